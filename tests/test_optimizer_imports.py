"""The first optimizer of a process imports torch._dynamo one thread at a time.

trainer/training.py: torch.optim imports torch._dynamo and torch._inductor,
which import each other, when the first optimizer is made; two threads
doing it at once can get a partially initialized module. Each case runs in
a fresh interpreter, where nothing has imported them yet.
"""

import subprocess
import sys

from tests.support import BASE_DIR

# Records, at the moment torch._dynamo's import starts, whether the lock that
# serialises it is held; then makes optimizers from several threads at once.
SCRIPT = r"""
import builtins, sys, threading
import torch
from recognizer.network import build_model
from trainer import training

real_import = builtins.__import__
held = []

def watching_import(name, *args, **kwargs):
    if name == "torch._dynamo" and "torch._dynamo" not in sys.modules:
        held.append(training._OPTIMIZER_IMPORTS.locked())
    return real_import(name, *args, **kwargs)

builtins.__import__ = watching_import
start = threading.Barrier(4)
errors = []

def make(optimizer):
    model = build_model()
    start.wait()
    try:
        training.build_optimizer(model, training.TrainConfig(optimizer=optimizer))
    except Exception as error:
        errors.append(repr(error))

threads = [threading.Thread(target=make, args=(name,)) for name in ("adamw", "sgd") * 2]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("held", held, "errors", errors, "imported", "torch._dynamo" in sys.modules)
"""


def test_optimizers_made_at_once_import_torch_dynamo_under_the_lock():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=BASE_DIR, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    # The import started exactly once, with the lock held; no thread failed.
    assert result.stdout.split() == ["held", "[True]", "errors", "[]", "imported", "True"]
