"""Export-time graph rewrites that ONNX Runtime does not do itself (checked by the parity test).

``upsample_conv_to_conv_transpose``: the generators' up-blocks are nearest x2 upsampling then
a 3x3 convolution (padding 1). That pair equals one transposed convolution with a 4x4 kernel,
stride 2 and padding 1, whose taps are sums of the 3x3 taps: each output pixel of the pair
reads a 2x2 input window, so the transposed form does 16 instead of 36 multiply-adds per
input pixel and channel pair, and skips the upsampled intermediate tensor. Only the exact
pattern is rewritten (nearest, asymmetric/floor, scales [1, 1, 2, 2], a constant 3x3 weight,
stride 1, dilation 1, one group, padding 1, the upsampled tensor used by that conv alone).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np


def _tap_map() -> dict[tuple[int, int], int]:
    """(output parity a, 3x3 tap k) -> 4x4 transposed-conv tap t, in one dimension.

    Output position p = 2i + a reads upsampled position q = p + k - 1, i.e. input
    floor(q / 2); the transposed conv with stride 2, padding 1 writes input i to outputs
    p = 2i + t - 1, so t = p + 1 - 2 * floor((p + k - 1) / 2).
    """
    taps = {}
    for p in (4, 5):
        for k in range(3):
            taps[(p % 2, k)] = p + 1 - 2 * ((p + k - 1) // 2)
    return taps


def transposed_weight(w: np.ndarray) -> np.ndarray:
    """(Cout, Cin, 3, 3) conv weight -> (Cin, Cout, 4, 4) ConvTranspose weight."""
    taps = _tap_map()
    out = np.zeros((w.shape[1], w.shape[0], 4, 4), dtype=w.dtype)
    wt = w.transpose(1, 0, 2, 3)
    for ay in range(2):
        for ky in range(3):
            for ax in range(2):
                for kx in range(3):
                    out[:, :, taps[(ay, ky)], taps[(ax, kx)]] += wt[:, :, ky, kx]
    return out


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def upsample_conv_to_conv_transpose(model: Any) -> int:
    """Rewrite every nearest-x2-upsample + 3x3-conv pair in ``model`` in place; returns how many."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    consts = {n.output[0]: n for n in g.node if n.op_type == "Constant" and n.attribute}

    def const(name: str) -> np.ndarray | None:
        if name in inits:
            return numpy_helper.to_array(inits[name])
        node = consts.get(name)
        if node is not None and node.attribute[0].name == "value":
            return numpy_helper.to_array(node.attribute[0].t)
        return None

    users: dict[str, list[Any]] = defaultdict(list)
    for n in g.node:
        for i in n.input:
            users[i].append(n)
    outputs = {o.name for o in g.output}
    producer = {o: n for n in g.node for o in n.output}

    replace: dict[int, Any] = {}
    drop: set[int] = set()
    new_inits = []
    for conv in g.node:
        if conv.op_type != "Conv" or len(conv.input) < 2:
            continue
        up = producer.get(conv.input[0])
        if up is None or up.op_type != "Resize" or len(up.input) < 3:
            continue
        if len(users[up.output[0]]) != 1 or up.output[0] in outputs:
            continue
        ra = _attrs(up)
        scales = const(up.input[2])
        if (
            _text(ra.get("mode", "nearest")) != "nearest"
            or _text(ra.get("coordinate_transformation_mode", "half_pixel")) != "asymmetric"
            or _text(ra.get("nearest_mode", "round_prefer_floor")) != "floor"
            or scales is None
            or [float(s) for s in scales.ravel()] != [1.0, 1.0, 2.0, 2.0]
            or (len(up.input) > 3 and up.input[3])
        ):
            continue
        w = const(conv.input[1])
        ca = _attrs(conv)
        if (
            w is None
            or w.ndim != 4
            or tuple(w.shape[2:]) != (3, 3)
            or int(ca.get("group", 1)) != 1
            or list(ca.get("strides", [1, 1])) != [1, 1]
            or list(ca.get("dilations", [1, 1])) != [1, 1]
            or list(ca.get("pads", [0, 0, 0, 0])) != [1, 1, 1, 1]
            or _text(ca.get("auto_pad", "NOTSET")) != "NOTSET"
        ):
            continue
        wname = f"{conv.name or conv.output[0]}__convT_weight"
        new_inits.append(numpy_helper.from_array(transposed_weight(w), wname))
        inputs = [up.input[0], wname, *conv.input[2:3]]
        replace[id(conv)] = helper.make_node(
            "ConvTranspose",
            inputs,
            list(conv.output),
            name=f"{conv.name}__convT",
            kernel_shape=[4, 4],
            strides=[2, 2],
            pads=[1, 1, 1, 1],
        )
        drop.add(id(up))
    if not replace:
        return 0
    nodes = []
    for n in g.node:
        if id(n) in drop:
            continue
        nodes.append(replace.get(id(n), n))
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(new_inits)
    used = {i for n in g.node for i in n.input}
    keep = [i for i in g.initializer if i.name in used or i.name in {x.name for x in g.input}]
    del g.initializer[:]
    g.initializer.extend(keep)
    return len(replace)
