"""``minicnn train`` and ``minicnn evaluate``: where their pieces live, and the names they had.

The commands are split into three modules, read in this order:

    args.py     the command-line options (argparse) and their value checks
    config.py   the run's settings (defaults, ``--resume``), and building the data, model,
                optimizer and schedule from them
    run.py      the run itself: train_main / evaluate_main, exit statuses, messages

``minicnn/cli.py`` calls, for each sub-command, exactly

    add_train_arguments(parser)      train_main(args) -> exit status
    add_evaluate_arguments(parser)   evaluate_main(args) -> exit status

Every name this module offered before the split is still importable from here.

The default recipe
------------------
``minicnn train`` with no options trains :data:`minicnn.models.default_model_name`
(``fashion_cnn``) on Fashion-MNIST: SGD with Nesterov momentum 0.9, learning rate 0.05,
weight decay 5e-4, batch 128, a cosine schedule stepped every iteration, no augmentation,
:data:`DEFAULT_EPOCHS` (8) epochs, seed 0, on every core the process may use (``--threads``; see
:mod:`minicnn.fast.threads`). See docs/training.md for the accuracy and time measured.

Where the output goes
---------------------
``--out DIR``, or by default ``runs/<model>-<YYYYmmdd>-<HHMMSS>``; ``runs/latest`` is then made a
symbolic link to that folder (where the file system allows it), and ``--resume`` without a path or
``--out`` continues ``runs/latest`` (``evaluate`` reads it by default too). The folder receives
``metrics.json``, ``checkpoint.npz`` (every epoch, atomically, only when every parameter, buffer
and the test loss are finite), ``config.json``, ``confusion.json``/``.csv`` and, with matplotlib,
``curves.png`` and ``confusion.png``. The folder is locked while the run writes there (``.lock``,
see :func:`~minicnn.train.checkpoint.lock_run_folder`): a second run into it is refused, and so is
a new run into a folder holding another run's checkpoint.

Exit status: 0 done; 1 bad usage or input (options, data, files, a folder that cannot be
written, out of memory); 2 the command line could not be parsed (argparse); 3 the training
diverged (NaN/inf; the last good checkpoint is kept); 130 interrupted (the last epoch's
checkpoint is kept: the message names the ``--resume`` folder).
"""
from .args import (add_data_arguments, add_evaluate_arguments, add_train_arguments, image_size,
                   non_negative_float, non_negative_int, parse_evaluate_args, parse_train_args,
                   positive_int)
from .config import (DATASET_ALIASES, DATASETS, DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_WEIGHT_DECAY,
                     DEFAULTS, RESUME_OVERRIDES, UsageError, build_model, build_optimizer,
                     build_scheduler, build_transforms, load_datasets, random_subset,
                     resolve_config)
from .run import (EXIT_ARGPARSE, EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_OK,
                  evaluate_main, train_main)

__all__ = ["add_data_arguments", "add_train_arguments", "add_evaluate_arguments",
           "parse_train_args", "parse_evaluate_args", "positive_int", "non_negative_int",
           "non_negative_float", "image_size", "DATASETS", "DATASET_ALIASES", "DEFAULT_EPOCHS",
           "DEFAULTS", "DEFAULT_LR", "DEFAULT_WEIGHT_DECAY", "RESUME_OVERRIDES", "UsageError",
           "resolve_config", "load_datasets", "random_subset", "build_transforms", "build_model",
           "build_optimizer", "build_scheduler", "train_main", "evaluate_main", "EXIT_OK",
           "EXIT_BAD_INPUT", "EXIT_ARGPARSE", "EXIT_DIVERGED", "EXIT_INTERRUPTED"]
