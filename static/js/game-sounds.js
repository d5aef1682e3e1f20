// The room's sounds: a round starting, the model recognising my digit, and
// the last seconds of a round. Short tones made with Web Audio (no sound
// files to fetch). Off until the player turns them on: a page that beeps on
// its first visit in a classroom or on a bus is worse than a silent one. The
// choice is remembered in localStorage for the next visit.

export const SOUND_KEY = "digit-game-sound";

// Each sound: [frequency Hz, start s, length s] tones, quiet (gain 0.08) and
// under 0.4 s in all.
const TONES = {
  start: [[660, 0, 0.1], [880, 0.12, 0.14]],
  success: [[523, 0, 0.1], [659, 0.09, 0.1], [784, 0.18, 0.2]],
  hurry: [[440, 0, 0.07]],
};
const GAIN = 0.08;
// What was played, for the page's own checks: the last few only.
const LOG_LENGTH = 20;

function storedChoice() {
  try {
    return localStorage.getItem(SOUND_KEY) === "1";
  } catch {
    return false;
  }
}

export class Sounds {
  constructor() {
    this.enabled = storedChoice();
    this.log = [];
    this._context = null;
  }

  /** Turn the sounds on or off, and remember it (called from a click: audio may start then). */
  setEnabled(on) {
    this.enabled = Boolean(on);
    try {
      localStorage.setItem(SOUND_KEY, this.enabled ? "1" : "0");
    } catch {
      // Not remembered: this visit still follows the choice.
    }
    if (this.enabled) this._audio()?.resume?.();
  }

  /** Play sound `name` if the sounds are on; whether it was played. */
  play(name) {
    const tones = TONES[name];
    if (!this.enabled || !tones) return false;
    this.log.push(name);
    if (this.log.length > LOG_LENGTH) this.log.shift();
    const audio = this._audio();
    if (!audio) return true;
    const now = audio.currentTime;
    for (const [frequency, start, length] of tones) {
      const oscillator = audio.createOscillator();
      const gain = audio.createGain();
      oscillator.frequency.value = frequency;
      // A quick rise and fall: no click at either end.
      gain.gain.setValueAtTime(0, now + start);
      gain.gain.linearRampToValueAtTime(GAIN, now + start + 0.01);
      gain.gain.linearRampToValueAtTime(0, now + start + length);
      oscillator.connect(gain).connect(audio.destination);
      oscillator.start(now + start);
      oscillator.stop(now + start + length + 0.02);
    }
    return true;
  }

  _audio() {
    if (this._context === null) {
      const Context = window.AudioContext || window.webkitAudioContext;
      try {
        this._context = Context ? new Context() : false;
      } catch {
        this._context = false; // no audio here: the page stays silent
      }
    }
    return this._context || null;
  }
}
