"""The scalars of a run's TensorBoard event file, read with TensorBoard's own reader (the test-only venv)."""
import glob

from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.util import tensor_util


def scalars(run_dir):
    """{step: {tag: value}} of the one events.out.tfevents.* file in run_dir."""
    files = glob.glob(run_dir + "/events.out.tfevents.*")
    assert len(files) == 1, files
    seen = {}
    # EventFileLoader is what TensorBoard itself reads with: it migrates simple_value scalars to scalar tensors.
    for event in EventFileLoader(files[0]).Load():
        for value in event.summary.value:
            got = float(tensor_util.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
            seen.setdefault(event.step, {})[value.tag] = got
    return seen
