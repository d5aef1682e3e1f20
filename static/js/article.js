// "a 7" but "an 8": the indefinite article before a number, as the number is
// read out in English, the same on every page that names a digit. A number
// takes "an" when its spoken form starts with a vowel sound: eight, eleven,
// eighteen, and the numbers read starting with them (80-89, 800-899, 8,000,
// 11,000, 18,000...). The server's templates use the same rule
// (recognizer/templatetags/digits.py).

/** "a" or "an", for the number `number` as it is read out. */
export function article(number) {
  const value = Number(number);
  if (!Number.isFinite(value) || value < 0) return "a";
  const digits = String(Math.trunc(value));
  // The group read first: "18" of 18,000, "1" of 1,800.
  const lead = digits.slice(0, digits.length % 3 || 3);
  return digits.startsWith("8") || lead === "11" || lead === "18" ? "an" : "a";
}

/** The number with its article: "a 7", "an 8". */
export function withArticle(number) {
  return `${article(number)} ${number}`;
}
