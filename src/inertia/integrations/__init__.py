"""Thin layers between :class:`inertia.diagnostics.Monitor` and the tools a training run already uses.

- :mod:`.lightning`: ``MonitorCallback``, a PyTorch Lightning ``Callback`` (``pip install 'inertia[lightning]'``);
- :mod:`.huggingface`: ``MonitorCallback``, a Hugging Face ``transformers.TrainerCallback``
  (``pip install 'inertia[hf]'``);
- :mod:`.tensorboard`: ``write_monitor_records`` and ``TensorBoardWriter``, the Monitor's records as TensorBoard
  scalars and histograms (``pip install 'inertia[tensorboard]'``).

Importing this package imports none of them (Lightning alone takes seconds to import): import the submodule you
use. A submodule whose package is missing raises an ``ImportError`` that names the extra to install.
"""

__all__ = ["huggingface", "lightning", "tensorboard"]
