"""Training: the loop, checkpoints, fine-tuning helpers and the ``train``/``evaluate`` commands.

    trainer.py     Trainer (epochs, validation, metrics.json, checkpoints, resume), evaluate, fit
    checkpoint.py  save_checkpoint / load_checkpoint (model + optimizer + scheduler + RNG state)
    finetune.py    load_pretrained, replace_head, freeze, train_only_head
    metrics.py     top-k hits, the confusion matrix
    progress.py    the per-epoch progress bar (tqdm if installed)
    plots.py       training curves and confusion matrix as PNG (matplotlib if installed)
    args.py        the options of ``minicnn train`` and ``minicnn evaluate``
    config.py      a run's settings (defaults, --resume) and building its pieces
    run.py         the commands themselves: train_main, evaluate_main, exit statuses

From Python:

>>> from minicnn import models, optim
>>> from minicnn.data import DataLoader, FashionMNIST
>>> from minicnn.train import Trainer
>>> model = models.get("fashion_cnn")
>>> train = DataLoader(FashionMNIST(train=True), batch_size=128, shuffle=True, drop_last=True)
>>> test = DataLoader(FashionMNIST(train=False), batch_size=256)
>>> opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
>>> sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8)           # stepped per epoch
>>> trainer = Trainer(model, opt, train, test, scheduler=sched, epochs=8, out_dir="runs/mine")
>>> history = trainer.fit()        # metrics.json, checkpoint.npz, ... in runs/mine

After an interruption, build the same objects again, then ``trainer.resume()`` (from
``out_dir/checkpoint.npz``) and ``trainer.fit()`` carry on exactly where the checkpoint stopped.

(Without ``Normalize`` the inputs are in [0, 1]; the ``train`` command also normalises them.)
"""
from .checkpoint import (CHECKPOINT_NAME, Checkpoint, CheckpointError, load_checkpoint,
                         save_checkpoint)
from .finetune import (check_weights, find_head, freeze, head_classes, load_pretrained,
                       read_state_dict, replace_head, train_only_head, trainable_parameters,
                       unfreeze)
from .metrics import confusion_matrix, format_confusion, topk_correct
from .progress import ProgressBar
from .trainer import Trainer, TrainingDiverged, evaluate, fit

__all__ = ["Trainer", "TrainingDiverged", "evaluate", "fit", "save_checkpoint", "load_checkpoint",
           "Checkpoint", "CheckpointError", "CHECKPOINT_NAME", "load_pretrained", "check_weights",
           "read_state_dict", "replace_head",
           "find_head", "freeze", "unfreeze", "train_only_head", "trainable_parameters",
           "head_classes", "confusion_matrix", "format_confusion", "topk_correct", "ProgressBar"]
