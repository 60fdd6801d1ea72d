# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %%
# Setup: install minicnn where it is missing (Colab), and look for a GPU.
import importlib.util, os, subprocess, sys
if importlib.util.find_spec("minicnn") is None:
    # On Colab: install minicnn from its repository (set MINICNN_REPO to your course's copy)
    repo = os.environ.get("MINICNN_REPO", "https://github.com/minicnn/minicnn")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", f"git+{repo}"])
import minicnn
print("GPU available:", minicnn.cuda.is_available())

# %% [markdown]
# # Tutorial 2: write your own layer, and prove its gradient right
#
# Every differentiable operation in minicnn is a `mc.Function` with a `forward` and a
# hand-written `backward`. This notebook adds a new one, **Swish with a learnable slope**
# (Ramachandran et al. 2017; SiLU when the slope is 1):
#
#     y = x * sigmoid(beta * x),        beta: one value per channel
#
# and walks through the whole loop: derive the backward pass, write the `Function`,
# gradient-check it with `mc.gradcheck` and with the `minicnn gradcheck FILE.py:Class` command,
# watch the check catch a bug, wrap the function in an `nn.Module`, and train a network with it.
# (The page [docs/gradcheck.md](../gradcheck.md) explains how the check works; it walks through a
# PReLU layer the same way.)
#
# Run with `MINICNN_QUICK=1` for a seconds-long version (the training at the end is shortened).

# %%
import inspect
import os
import tempfile

import numpy as np

import minicnn as mc
import minicnn.functional as F
from minicnn import nn, optim

QUICK = os.environ.get("MINICNN_QUICK") == "1"

# %% [markdown]
# ## 1. Derive the backward pass
#
# With `s = sigmoid(beta * x)` and `sigmoid' = s (1 - s)`:
#
#     dy/dx    = s + x * s (1 - s) * beta          = s * (1 + beta * x * (1 - s))
#     dy/dbeta = x * s (1 - s) * x                 = x^2 * s * (1 - s)
#
# Backward receives `g = dL/dy` (same shape as `y`) and must return `dL/dx = g * dy/dx`
# (elementwise) and `dL/dbeta = sum of g * dy/dbeta` over every axis except the channel axis,
# because one `beta[c]` is used at every position of channel `c` (a broadcast in the forward pass
# becomes a sum in the backward pass).
#
# ## 2. Write the `Function`
#
# * `forward(self, x, beta)` and `backward(self, g)` work on *backend arrays* (NumPy on the CPU,
#   CuPy on the GPU), never on Tensors. `xp = mc.get_array_module(x)` picks the right library, so
#   the same code runs on both.
# * `forward` saves on `self` what `backward` needs -- here `x`, `s` and the broadcast `beta`.
# * `backward` returns one gradient per input, in order.
# * `gradcheck_inputs` (optional) tells `minicnn gradcheck` what inputs to try.

# %%
class SwishFunction(mc.Function):
    """y = x * sigmoid(beta * x) for x of shape (N, C, H, W) and beta of shape (C,)."""

    def forward(self, x, beta):
        xp = mc.get_array_module(x)
        b = beta.reshape(1, -1, 1, 1)                 # broadcast over N, H, W
        s = 1 / (1 + xp.exp(-b * x))
        self.x, self.b, self.s = x, b, s
        return x * s

    def backward(self, g):
        x, b, s = self.x, self.b, self.s
        gx = g * s * (1 + b * x * (1 - s))
        gbeta = (g * x * x * s * (1 - s)).sum(axis=(0, 2, 3))
        return gx, gbeta

    @staticmethod
    def gradcheck_inputs():
        rng = np.random.default_rng(0)
        return [rng.standard_normal((2, 3, 4, 4)), rng.uniform(0.5, 2.0, size=3)]


# %% [markdown]
# A `Function` is applied by calling an *instance* on tensors: the output is a Tensor wired into
# the graph, so `backward()` on anything computed from it reaches `x` and `beta`.

# %%
x = mc.Tensor(np.linspace(-3, 3, 7).reshape(1, 1, 1, 7), requires_grad=True)
beta = mc.Tensor(np.array([1.0]), requires_grad=True)
y = SwishFunction()(x, beta)
y.sum().backward()
print("y       ", np.round(y.data.ravel(), 3))
print("dy/dx   ", np.round(x.grad.data.ravel(), 3))
print("dL/dbeta", np.round(beta.grad.data, 3))

# %% [markdown]
# ## 3. Check it with `mc.gradcheck`
#
# `mc.gradcheck(fn, inputs)` compares autograd's gradient of every input that requires grad with
# central finite differences, in float64, for a random upstream gradient. It returns `True`, or
# raises `mc.GradcheckError` naming the input and the worst element.

# %%
rng = np.random.default_rng(1)
x = mc.Tensor(rng.standard_normal((2, 3, 5, 5)), requires_grad=True)
beta = mc.Tensor(rng.uniform(0.5, 2.0, size=3), requires_grad=True)
print("gradcheck:", mc.gradcheck(lambda x, b: SwishFunction()(x, b), [x, beta]))

# %% [markdown]
# ## 4. Check it from the command line
#
# Put the class in a file of its own and run `minicnn gradcheck my_swish.py:SwishFunction`. The
# command imports the file, builds the inputs from `gradcheck_inputs()` (random `(3, 4)` arrays
# otherwise, see `--shape`), checks every input and prints a table; its exit status is 0 only if
# the check passes. Here we write the file to a temporary folder and run the command in-process
# (from a terminal it is the same command).

# %%
def class_source(cls):
    """The source code of ``cls``. In a notebook ``inspect.getsource`` cannot find a class (it has
    no file), so look it up in the cell that defined its ``forward`` method."""
    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):
        import linecache
        lines = linecache.getlines(cls.forward.__code__.co_filename)
        start = next(i for i, line in enumerate(lines) if line.startswith(f"class {cls.__name__}"))
        return "".join(inspect.getblock(lines[start:]))


folder = tempfile.mkdtemp(prefix="minicnn-tutorial2-")
path = os.path.join(folder, "my_swish.py")
with open(path, "w") as f:
    f.write("import numpy as np\nimport minicnn as mc\n\n\n" + class_source(SwishFunction))
print(f"$ minicnn gradcheck {path}:SwishFunction")

from minicnn.cli import main as minicnn_main  # noqa: E402  (the `minicnn` command)

status = minicnn_main(["gradcheck", f"{path}:SwishFunction"])
print("exit status", status)
assert status == 0

# %% [markdown]
# ## 5. Watch the check catch a bug
#
# The most common backward bug is a forgotten term of the product rule. Here `dy/dx` misses
# `x * s (1 - s) * beta` -- the network would still train, just badly, and nothing would crash.
# The check does not let it through:

# %%
class BuggySwish(SwishFunction):
    def backward(self, g):
        gx = g * self.s                                 # BUG: forgot  g * b * x * s * (1 - s)
        gbeta = (g * self.x * self.x * self.s * (1 - self.s)).sum(axis=(0, 2, 3))
        return gx, gbeta


ok = mc.gradcheck(lambda x, b: BuggySwish()(x, b), [x, beta], raise_exception=False)
print("buggy version passes?", ok)
try:
    mc.gradcheck(lambda x, b: BuggySwish()(x, b), [x, beta])
except mc.GradcheckError as error:
    print(error)
assert not ok

# %% [markdown]
# ## 6. Wrap it in a Module
#
# An `nn.Module` holds the parameter (`nn.Parameter`: a tensor that requires grad and is
# registered under its attribute name, so it appears in `parameters()` and `state_dict()`) and
# calls the function in `forward`. Checking the input shape gives a clear error message instead
# of a broadcasting error deep inside `forward`.

# %%
class Swish(nn.Module):
    def __init__(self, num_channels, beta=1.0):
        super().__init__()
        self.num_channels = num_channels
        self.beta = nn.Parameter(np.full(num_channels, beta, dtype=np.float32))

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.num_channels:
            raise ValueError(f"Swish({self.num_channels}): expected input (N, {self.num_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        return SwishFunction()(x, self.beta)


layer = Swish(3)
print([name for name, _ in layer.named_parameters()], layer.state_dict()["beta"])

# %% [markdown]
# The module can be checked in place too: make it float64 and pass its parameter among the
# checked inputs (the checker then perturbs the parameter itself).

# %%
layer.to(dtype=np.float64)
print("module gradcheck:", mc.gradcheck(lambda x, w: layer(x), [x, layer.beta]))

# %% [markdown]
# ## 7. Use it in a network
#
# A small CNN with Swish instead of ReLU, trained for a few steps on random data that has a
# learnable rule (the class is which quadrant of the image is brightest). The loss falls, and the
# `beta` parameters move: the optimizer treats them like any weight.

# %%
mc.manual_seed(0)
net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), Swish(8), nn.MaxPool2d(2),
                    nn.Conv2d(8, 8, 3, padding=1), Swish(8), nn.AdaptiveAvgPool2d(2),
                    nn.Flatten(), nn.Linear(32, 4))
data_rng = np.random.default_rng(0)


def batch(n=64):
    images = data_rng.random((n, 1, 8, 8)).astype(np.float32)
    labels = data_rng.integers(0, 4, n)
    for i, q in enumerate(labels):               # brighten one quadrant
        r, c = divmod(int(q), 2)
        images[i, 0, 4 * r:4 * r + 4, 4 * c:4 * c + 4] += 0.5
    return mc.Tensor(images), labels


opt = optim.Adam(net.parameters(), lr=0.01)
steps = 30 if QUICK else 300
for step in range(1, steps + 1):
    xb, yb = batch()
    loss = F.cross_entropy(net(xb), yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % (steps // 5) == 0:
        print(f"step {step:>3}: loss {loss.item():.3f}")
print("learned betas of the first Swish:", np.round(net[1].beta.data, 2))

# %% [markdown]
# That is the whole loop: derive, write `forward`/`backward`, `mc.gradcheck`, `minicnn gradcheck`,
# then use the layer like any other. The built-in layers in `minicnn/functional/` are written
# exactly this way -- read `activation.py` next to this notebook.
