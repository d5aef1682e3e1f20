// Sharing the room's link: the device's share sheet where there is one
// (navigator.share: phones, some desktops), otherwise the link is copied.

/** The button's words for this browser. */
export function shareLabel(nav = navigator) {
  return typeof nav.share === "function" ? "Share" : "Copy link";
}

/**
 * Share `url` (with `title`): "shared", "copied", "cancelled" (the player
 * closed the share sheet) or "failed" (nothing could be done: the caller
 * selects the link for a manual copy).
 */
export async function shareLink(url, title, nav = navigator) {
  if (typeof nav.share === "function") {
    try {
      await nav.share({title, text: title, url});
      return "shared";
    } catch (error) {
      if (error?.name === "AbortError") return "cancelled";
      // A share sheet that refused (no user gesture, not allowed): copy instead.
    }
  }
  try {
    await nav.clipboard.writeText(url);
    return "copied";
  } catch {
    return "failed";
  }
}
