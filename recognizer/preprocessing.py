class DrawingError(ValueError):
    pass


def strokes_to_input(strokes, width, height):
    raise NotImplementedError


def image_to_input(data):
    raise NotImplementedError
