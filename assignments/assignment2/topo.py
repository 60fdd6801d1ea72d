"""Assignment 2, Q5: the order of the backward walk.

``loss.backward()`` must call every function of the graph once, and only after it knows the whole
gradient of that function's outputs: every function that *used* an output must have run its own
backward first. That is a *reverse topological order* of the graph. Here you write it for any
graph given by a ``parents`` function, then look at minicnn's own graphs with it.
"""


def topological_order(output, parents):
    """Every node reachable from ``output``, each listed **after all the nodes that feed it**.

    Inputs:
        output: the last node of the graph (for autograd: the function that made the loss).
        parents: ``parents(node)`` returns the list of nodes whose outputs ``node`` used (for
            autograd: the functions that made its inputs). A node may feed several nodes (a
            tensor used twice); it must still appear exactly once.

    Returns a list: the inputs-side nodes first, ``output`` last. Reversed, it is the order in
    which backward calls the functions. Do it without recursion if you can (deep networks have
    graphs thousands of nodes deep; Python's recursion limit is 1000): a stack of
    ``(node, expanded)`` pairs works. Compare nodes by identity (``id(node)``), not by ``==``.
    """
    order = []
    # BEGIN SOLUTION (hint: depth-first search; append a node once all its parents are done)
    visited, stack = set(), [(output, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        for parent in parents(node):
            if id(parent) not in visited:
                stack.append((parent, False))
    # END SOLUTION
    return order


def function_parents(function):
    """The parents of a minicnn ``Function`` call in the recorded graph: the calls that made its
    inputs (leaf tensors, made by you, have no creator and are not nodes of this graph)."""
    return [t._creator for t in function.inputs if t is not None and t._creator is not None]


def backward_order(loss):
    """The functions ``loss.backward()`` will call, in the order it calls them (``loss`` must have
    been computed with gradients enabled, and ``backward`` not yet run)."""
    return list(reversed(topological_order(loss._creator, function_parents)))
