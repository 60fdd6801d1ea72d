"""PyTorch twins of minicnn models, for speed comparisons in the benchmarks (torch is optional).

``mirror(model, torch)`` builds a torch module with the same layers, the same state-dict keys and
the same weights, so both frameworks time exactly the same computation (the benchmark checks that
their outputs agree before timing). Covered: models made of ``features`` (+ ``avgpool``) +
``classifier`` Sequentials (lenet5, fashion_cnn, alexnet, zfnet, vgg*), and the CIFAR ResNets.
"""
import numpy as np


def _leaf(m, torch):
    nn = torch.nn
    kind = type(m).__name__
    if kind == "Conv2d":
        return nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                         groups=m.groups, bias=m.bias is not None)
    if kind == "Linear":
        return nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
    if kind in ("BatchNorm1d", "BatchNorm2d"):
        return getattr(nn, kind)(m.num_features, eps=m.eps, momentum=m.momentum)
    if kind == "MaxPool2d":
        return nn.MaxPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode)
    if kind == "AvgPool2d":
        return nn.AvgPool2d(m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode)
    if kind == "AdaptiveAvgPool2d":
        return nn.AdaptiveAvgPool2d(m.output_size)
    if kind == "LocalResponseNorm":
        return nn.LocalResponseNorm(m.size, m.alpha, m.beta, m.k)
    if kind == "Dropout":
        return nn.Dropout(m.p)
    if kind in ("ReLU", "Tanh", "Sigmoid", "Identity"):
        return getattr(nn, kind)()
    if kind == "Flatten":
        return nn.Flatten(m.start_dim)
    raise NotImplementedError(f"no torch twin for {kind}")


def _sequential(seq, torch):
    return torch.nn.Sequential(*[_leaf(m, torch) if not list(m.children()) else _sequential(m, torch)
                                 for m in seq])


def mirror(model, torch):
    """A torch module computing what ``model`` computes, with its weights copied in."""
    nn = torch.nn
    kind = type(model).__name__
    if kind == "CifarResNet":
        twin = _cifar_resnet(model, torch)
    elif hasattr(model, "features") and hasattr(model, "classifier"):
        class Twin(nn.Module):
            def __init__(self):
                super().__init__()
                self.features = _sequential(model.features, torch)
                if "avgpool" in model._modules:
                    self.avgpool = _leaf(model.avgpool, torch)
                self.classifier = _sequential(model.classifier, torch)

            def forward(self, x):
                x = self.features(x)
                if hasattr(self, "avgpool"):
                    x = self.avgpool(x)
                return self.classifier(torch.flatten(x, 1))
        twin = Twin()
    else:
        raise NotImplementedError(f"no torch twin for {kind}")
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in model.state_dict().items()}
    twin.load_state_dict(state, strict=False)
    return twin


def _cifar_resnet(model, torch):
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self, b):
            super().__init__()
            self.conv1, self.bn1 = _leaf(b.conv1, torch), _leaf(b.bn1, torch)
            self.conv2, self.bn2 = _leaf(b.conv2, torch), _leaf(b.bn2, torch)
            self.shortcut, self.planes, self.reshape = b.shortcut, b.planes, b.reshape_shortcut

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            if self.shortcut:
                if self.reshape:
                    s = x[:, :, ::2, ::2]
                    missing = self.planes - s.shape[1]
                    s = F.pad(s, (0, 0, 0, 0, missing // 2, missing - missing // 2))
                else:
                    s = x
                out = out + s
            return F.relu(out)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = _leaf(model.conv1, torch), _leaf(model.bn1, torch)
            for name in ("layer1", "layer2", "layer3"):
                setattr(self, name, nn.Sequential(*[Block(b) for b in getattr(model, name)]))
            self.fc = _leaf(model.fc, torch)

        def forward(self, x):
            x = F.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    return Net()
