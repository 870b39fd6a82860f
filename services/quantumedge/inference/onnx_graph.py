"""Merge a symbol's per-horizon ONNX models into one graph: one ORT call per row instead of one per horizon.

Each input model maps `features` float[N, F] -> `p_up` float[N, 1]; the merged graph shares the
input and concatenates the outputs into `p_up` float[N, H] in the given order. The merge happens in
memory at load time, after every artifact's checksum was verified, so the registry keeps one
immutable artifact per symbol x horizon and promotion stays per horizon.
"""

from __future__ import annotations

INPUT_NAME = "features"
OUTPUT_NAME = "p_up"


def combine(artifacts: list[bytes], name: str = "combined") -> bytes:
    import onnx
    from onnx import compose, helper

    nodes, inits, outputs = [], [], []
    opsets: dict[str, int] = {}
    input_vi = None
    ir_version = 0
    for i, data in enumerate(artifacts):
        model = onnx.load_from_string(data)
        ir_version = max(ir_version, model.ir_version)
        for op in model.opset_import:
            opsets[op.domain] = max(opsets.get(op.domain, 0), op.version)
        if input_vi is None:
            input_vi = model.graph.input[0]
        prefix = f"m{i}_"
        model = compose.add_prefix(model, prefix)
        g = model.graph
        for node in g.node:
            for j, inp in enumerate(node.input):
                if inp == prefix + INPUT_NAME:
                    node.input[j] = INPUT_NAME
            nodes.append(node)
        inits.extend(g.initializer)
        outputs.append(prefix + OUTPUT_NAME)
    if input_vi is None:
        raise ValueError("nothing to combine")
    nodes.append(helper.make_node("Concat", outputs, [OUTPUT_NAME], axis=1, name="concat_horizons"))
    out_vi = helper.make_tensor_value_info(OUTPUT_NAME, onnx.TensorProto.FLOAT, [None, len(artifacts)])
    graph = helper.make_graph(nodes, name, [input_vi], [out_vi], initializer=inits)
    merged = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())])
    merged.ir_version = ir_version
    onnx.checker.check_model(merged)
    return merged.SerializeToString()
