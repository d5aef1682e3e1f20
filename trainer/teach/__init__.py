"""The teach page: a learner's (or a class's) drawings teach a private copy of the model.

Models-free: the copies themselves are recognizer.taught's. The parts:
jobs.py (a request's checks and its held-out split, plain Python),
copies.py (one training: examples in, a measured copy out), status.py (what
every process knows of a job, in the shared cache), worker.py (the bounded
runner: threads, queue, cancelling), class_drawings.py (a class's examples),
views.py and urls.py (the page and its JSON API under /learn/teach/).
"""
