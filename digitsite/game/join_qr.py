"""A room's join link as a QR code, an SVG made on the server.

A class's projector shows it so that students join from their phones by
pointing the camera at the wall. It is made here with `segno` (a maintained,
pure-Python QR encoder; README "Libraries"), not by a script from a CDN: the
site loads nothing from elsewhere, and its Content-Security-Policy would
refuse it. The SVG has no style attribute (the policy refuses inline
styles): its colours are SVG presentation attributes, its size the page's CSS.
"""

import segno

# Error correction M (15% of the code may be unreadable): a projected code is
# read at an angle, through glare, from the back of the room.
ERROR_CORRECTION = "m"
# The quiet margin around the code, in modules: the standard's minimum.
BORDER = 4


def join_qr(url):
    """The segno QR code of `url` (tests compare the page's SVG with it)."""
    return segno.make(url, error=ERROR_CORRECTION, micro=False)


def join_qr_svg(url, title=""):
    """`url` as an inline SVG QR code: dark modules on a light square, sized by CSS."""
    return join_qr(url).svg_inline(
        scale=1, border=BORDER, dark="#000", light="#fff", omitsize=True,
        svgclass="qr", lineclass="qr__modules", title=title or None)
