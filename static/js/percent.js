// How a probability reads as text ("97.3%"), the same on every page that
// shows the model's guesses: the game, the practice page and the teaching pages.

/**
 * A probability in [0, 1] as a percentage with one decimal; "100%" once it
 * would read 100.0%. `tiny`: say "<0.1%" (or "0%" for nothing at all) rather
 * than "0.0%", for lists of all ten digits where most are almost nothing.
 */
export function percent(probability, {tiny = false} = {}) {
  const value = Math.max(0, Math.min(1, Number(probability) || 0)) * 100;
  if (value >= 99.95) return "100%";
  if (tiny && value < 0.05) return value > 0 ? "<0.1%" : "0%";
  return `${value.toFixed(1)}%`;
}
