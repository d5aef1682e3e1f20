// The final standings of a game, from the leaderboard of `game_over`
// (docs/protocol.md): the winner message, a podium of the first three places
// and every player's line. Places are counted among the players still in the
// room: a player who left keeps their score on the list, marked "left", but is
// neither placed nor crowned (the server ranks them the same way: `rank` is
// null for them). Equal scores share a place, and the place after them is
// skipped: 1, 1, 3.

import {h} from "./game-ui.js";

const PLACE_NAMES = {1: "1st", 2: "2nd", 3: "3rd"};

/**
 * The leaderboard's rows, best first, each with `place` (null for a player
 * who left): {rows, winners (the rows placed first), podium: [{place, rows}]}.
 */
export function standings(leaderboard) {
  const present = leaderboard.filter((row) => !row.gone).sort((a, b) => b.score - a.score);
  const gone = leaderboard.filter((row) => row.gone).sort((a, b) => b.score - a.score);
  const placed = present.map((row, index) => ({...row, place: index + 1}));
  for (let index = 1; index < placed.length; index++) {
    if (placed[index].score === placed[index - 1].score) placed[index].place = placed[index - 1].place;
  }
  const podium = [1, 2, 3]
    .map((place) => ({place, rows: placed.filter((row) => row.place === place)}))
    .filter((step) => step.rows.length > 0);
  return {
    rows: [...placed, ...gone.map((row) => ({...row, place: null}))],
    winners: placed.filter((row) => row.place === 1),
    podium,
  };
}

/** "Ada wins!", "Ada and Bo share first place", or a solo player's score. */
export function winnerMessage({rows, winners}) {
  if (winners.length === 0) return "";
  if (rows.length === 1) return `${winners[0].name} scored ${winners[0].score} points.`;
  if (winners.length === 1) return `${winners[0].name} wins!`;
  const names = winners.map((row) => row.name);
  return `${names.slice(0, -1).join(", ")} and ${names.at(-1)} share first place`;
}

/** Show a `game_over` leaderboard in the final card's parts; `myId` marks mine. */
export function showStandings({winner, podium, list}, leaderboard, myId) {
  const result = standings(leaderboard);
  winner.textContent = winnerMessage(result);
  podium.replaceChildren(...result.podium.map((step) => h("li", {
    class: `podium__step podium__step--${step.place}`,
    dataset: {place: String(step.place)},
  },
  h("span", {class: "podium__place"}, PLACE_NAMES[step.place]),
  h("span", {class: "podium__names"}, step.rows.map((row) => row.name).join(", ")),
  h("span", {class: "podium__score"}, String(step.rows[0].score)))));
  list.replaceChildren(...result.rows.map((row) => h("li", {
    dataset: {player: row.player, place: row.place === null ? "" : String(row.place)},
    class: [row.place === 1 ? "is-first" : "", row.gone ? "is-gone" : ""].join(" ").trim() || null,
  },
  h("span", {class: "rank", "aria-label": row.place === null ? "left" : `place ${row.place}`},
    row.place === null ? "–" : String(row.place)),
  h("span", {class: "name"}, row.name, row.player === myId ? " (you)" : "",
    row.gone ? [" ", h("span", {class: "badge"}, "left")] : null),
  h("span", {class: "score"}, String(row.score)))));
}
