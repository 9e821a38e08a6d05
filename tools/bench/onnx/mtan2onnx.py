#!/usr/bin/python3
"""Writes a .mtan model as ONNX, for mtan-bench's ONNX Runtime peer.

  mtan2onnx.py MODEL.mtan --task all|NAME -o OUT.onnx [--activations uint8|int8]
               [--schema-py DIR]
  mtan2onnx.py MODEL.mtan --identity -o OUT.onnx   (y = x: what a run through
               ONNX Runtime's binding costs when the model computes nothing)

The same function with the same weights, operator by operator:

- a float32 model becomes float ONNX (Gemm, Sigmoid, Tanh, Mul, Add, Softmax,
  ...);
- an int8 model becomes QDQ ONNX: every int8 tensor is the output of a
  QuantizeLinear with the file's scale and zero point, and each consumer
  reads it through a DequantizeLinear of its own; fully-connected weights are int8 per output
  channel (axis 0, zero point 0) and biases int32 at s_x * s_w[o], so that
  ONNX Runtime's QDQ optimizer can fuse them into its int8 kernels (QGemm).

  Activations are written as uint8 by default (q + 128, zero point + 128:
  the same real values on the same grid). ORT's x86 kernels are U8S8: its
  optimizer converts int8 activations to uint8 itself (QDQS8ToU8Transformer),
  but only where a QuantizeLinear has a single consumer, and a Gemm whose
  input and output then differ in type is not fused: with --activations int8
  (the file's literal types) about half of the fully-connected layers of the
  default MTAN stay float Gemm in ORT.

The graph has one input "x" [batch, features] of raw features and one output
"y" [batch, outputs]: the task's outputs, or for "all" every task's in task
order (as mtan_run writes them), after the task's output transform (EXPM1).
Only the operators of the task's plan are exported.

Reads the file with the flatc --python code of schema/mtan.fbs (CMake writes it
to build/generated/python; --schema-py). Needs Debian's python3-onnx,
python3-numpy and python3-flatbuffers (tools/setup.sh). The file is assumed
verified (mtan-bench and mtan-inspect verify it first); a malformed one fails
with a message, not a wrong graph. Exit codes: 0 written, 1 cannot export,
2 bad command line.
"""

import argparse
import os
import struct
import sys

FOOTER_BYTES = 16  # runtime/src/format.h: checksum u64, flatbuffer bytes u32, "MTXH"
OPSET = 17         # the newest opset of Debian 12's onnx 1.12


class ExportError(Exception):
    pass


def read_model(path, fb):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < FOOTER_BYTES + 8 or data[-4:] != b"MTXH":
        raise ExportError("not a .mtan file of format 1.2 or later (no MTXH footer)")
    n = struct.unpack_from("<I", data, len(data) - 8)[0]
    if n != len(data) - FOOTER_BYTES or data[4:8] != b"MTAN":
        raise ExportError(f"not a .mtan file (footer length {n}, file {len(data)} bytes)")
    return fb.Model.Model.GetRootAsModel(bytearray(data[:n]), 0)


class Exporter:
    def __init__(self, model, fb, np, onnx, activations="uint8"):
        self.m, self.fb, self.np, self.onnx = model, fb, np, onnx
        # The ONNX type of int8 activations, and what their zero points shift by.
        self.act_type, self.act_shift = (np.uint8, 128) if activations == "uint8" else (np.int8, 0)
        self.h = onnx.helper
        self.nodes, self.inits = [], []
        self.names = set()
        self.value = {}   # mtan tensor index -> ONNX value name
        self.consts = {}  # mtan constant tensor index -> its initializer's name
        self.stacks = {}  # attention values (tensor indices) -> their [B,T,C] stack

    # -- the file ---------------------------------------------------------
    def tensor(self, t):
        if t < 0 or t >= self.m.TensorsLength():
            raise ExportError(f"tensor index {t} out of range")
        return self.m.Tensors(t)

    def name_of(self, t):
        raw = self.tensor(t).Name()
        return raw.decode() if raw else f"t{t}"

    def is_int8(self, t):
        return self.tensor(t).Dtype() == self.fb.DType.DType.INT8

    def quant(self, t):
        q = self.tensor(t).Quantization()
        if q is None or q.ScaleLength() == 0:
            raise ExportError(f"int8 tensor '{self.name_of(t)}' has no quantization")
        return q

    def scale_zp(self, t):
        """An activation's scale and zero point (absent: 0, the format's default)."""
        q = self.quant(t)
        return self.np.float32(q.Scale(0)), int(q.ZeroPoint(0)) if q.ZeroPointLength() else 0

    def const(self, t, dtype):
        x = self.tensor(t)
        if x.Buffer() == 0:
            raise ExportError(f"'{self.name_of(t)}' is not a constant")
        raw = self.m.Buffers(x.Buffer()).DataAsNumpy()
        shape = [int(d) for d in x.ShapeAsNumpy()]
        a = self.np.frombuffer(raw.tobytes(), dtype=dtype)
        if a.size != int(self.np.prod(shape)):
            raise ExportError(f"'{self.name_of(t)}': {a.size} values for shape {shape}")
        return a.reshape(shape)

    # -- the graph --------------------------------------------------------
    def fresh(self, base):
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}#{k}"
        self.names.add(name)
        return name

    def init(self, base, array):
        name = self.fresh(base)
        self.inits.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op, inputs, base, **attrs):
        out = self.fresh(base)
        self.nodes.append(self.h.make_node(op, inputs, [out], name=self.fresh(op + ":" + base), **attrs))
        return out

    def const_init(self, t, dtype):
        """One initializer per constant tensor, shared by the operators that
        share it in the file (cross-attention weights)."""
        if t not in self.consts:
            self.consts[t] = self.init(self.name_of(t), self.const(t, dtype))
        return self.consts[t]

    def q_params(self, base, scale, zp):
        """Scale and zero point of an activation (zp as the file has it, int8)."""
        np = self.np
        return [self.init(base + ".scale", np.array(scale, np.float32)),
                self.init(base + ".zero_point", np.array(zp + self.act_shift, self.act_type))]

    def float_in(self, t):
        """The mtan tensor as float: a DequantizeLinear of its own for int8."""
        v = self.value[t]
        if not self.is_int8(t):
            return v
        s, zp = self.scale_zp(t)
        return self.node("DequantizeLinear", [v] + self.q_params(v + ".dq", s, zp), v + ".dq")

    def stack(self, values, name):
        """The float vectors `values` ([B,C] each) as one [B,T,C], made once."""
        key = tuple(values)
        if key not in self.stacks:
            axis = self.init(name + ".axis1", self.np.array([1], self.np.int64))
            rows = [self.node("Unsqueeze", [self.float_in(v), axis], self.value[v] + ".row")
                    for v in values]
            self.stacks[key] = self.node("Concat", rows, name + ".stack", axis=1)
        return self.stacks[key]

    def float_out(self, t, v):
        """Binds mtan tensor t to float value v, through a QuantizeLinear when t is int8."""
        if self.is_int8(t):
            name = self.name_of(t)
            s, zp = self.scale_zp(t)
            v = self.node("QuantizeLinear", [v] + self.q_params(name, s, zp), name)
        self.value[t] = v

    def op(self, o):
        fb, np = self.fb, self.np
        op = self.m.Operators(o)
        code = op.Opcode()
        ins = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []
        out = int(op.Outputs(0))
        name = self.name_of(out)
        C = fb.OpCode.OpCode
        if code == C.QUANTIZE:
            # The runtime's folded multiply-add (runtime/src/model.cc), in
            # float32: y = x * mul + add, int8: then round and saturate.
            n = self.m.InputsLength()
            std = np.array([self.m.Inputs(i).Std() for i in range(n)], np.float32)
            mean = np.array([self.m.Inputs(i).Mean() for i in range(n)], np.float32)
            if self.is_int8(out):
                s, zp = self.scale_zp(out)
                inv_s, zpf = np.float32(1) / s, np.float32(zp)
            else:
                inv_s, zpf = np.float32(1), np.float32(0)
            mul = inv_s / std
            add = zpf - mean * mul
            y = self.node("Mul", [self.value[ins[0]], self.init(name + ".mul", mul)], name + ".mul")
            y = self.node("Add", [y, self.init(name + ".add", add)], name + ".add")
            if self.is_int8(out):
                y = self.node("QuantizeLinear", [y] + self.q_params(name + ".round", 1.0, 0), name)
            self.value[out] = y
        elif code == C.FULLY_CONNECTED:
            x, w, b = ins
            if self.is_int8(w):
                # Symmetric weights (zero points 0, which mtan-convert does
                # not store); one scale per output channel, or one for all.
                wq = self.quant(w)
                rows = int(self.tensor(w).Shape(0))
                ws = np.array(wq.ScaleAsNumpy(), np.float32).reshape(-1)
                if ws.size == 1:
                    ws = np.full(rows, ws[0], np.float32)
                if ws.size != rows or (wq.ZeroPointLength() and np.any(wq.ZeroPointAsNumpy() != 0)):
                    raise ExportError(f"'{self.name_of(w)}': weights need 1 or {rows} scales "
                                      "and zero points 0")
                sx, _ = self.scale_zp(x)
                if not self.is_int8(x):
                    raise ExportError(f"'{name}': int8 weights on a float input")
                wname = self.const_init(w, np.int8)
                wf = self.node("DequantizeLinear",
                               [wname, self.init(wname + ".scale", ws),
                                self.init(wname + ".zero_point", np.zeros(ws.shape, np.int8))],
                               wname + ".dq", axis=0)
                bname = self.const_init(b, np.int32)
                bf = self.node("DequantizeLinear",
                               [bname, self.init(bname + ".scale", sx * ws),
                                self.init(bname + ".zero_point", np.zeros(ws.shape, np.int32))],
                               bname + ".dq", axis=0)
            else:
                wf = self.const_init(w, np.float32)
                bf = self.const_init(b, np.float32)
            y = self.node("Gemm", [self.float_in(x), wf, bf], name + ".gemm", transB=1)
            if op.Activation() == fb.Activation.Activation.RELU:
                y = self.node("Relu", [y], name + ".relu")
            self.float_out(out, y)
        elif code in (C.LOGISTIC, C.TANH):
            self.float_out(out, self.node("Sigmoid" if code == C.LOGISTIC else "Tanh",
                                          [self.float_in(ins[0])], name + ".f"))
        elif code in (C.MUL, C.ADD):
            self.float_out(out, self.node("Mul" if code == C.MUL else "Add",
                                          [self.float_in(ins[0]), self.float_in(ins[1])], name + ".f"))
        elif code == C.ATTENTION_POOL:
            # c = sum_s softmax_s(score_s) z_s as the trainer computes it: the
            # T scores [B,1] side by side, a softmax over them, and a batched
            # matrix product of the weights [B,1,T] with the T vectors stacked
            # [B,T,C] (one stack for all the pools that read the same z_s).
            # For ORT this beat T products and a Sum by ~10% at batch 1 and
            # tied at 256 (a broadcast product and a ReduceSum lost 13% there).
            t = len(ins) // 2
            if t == 0 or len(ins) != 2 * t:
                raise ExportError(f"'{name}': ATTENTION_POOL with {len(ins)} inputs")
            e = self.node("Concat", [self.float_in(i) for i in ins[:t]], name + ".scores", axis=1)
            a = self.node("Softmax", [e], name + ".softmax", axis=1)
            axis1 = self.init(name + ".axis1", np.array([1], np.int64))
            a = self.node("Unsqueeze", [a, axis1], name + ".weights")
            y = self.node("MatMul", [a, self.stack(ins[t:], name)], name + ".pooled")
            self.float_out(out, self.node("Squeeze", [y, axis1], name + ".sum"))
        elif code == C.SOFTMAX:
            self.float_out(out, self.node("Softmax", [self.float_in(ins[0])], name + ".f", axis=1))
        elif code == C.DEQUANTIZE:
            if self.is_int8(out) or not self.is_int8(ins[0]):
                raise ExportError(f"'{name}': DEQUANTIZE must read int8 and write float32")
            self.value[out] = self.float_in(ins[0])
        else:
            raise ExportError(f"operator {o}: opcode {code} has no ONNX mapping")

    def identity(self):
        h, n_in = self.h, self.m.InputsLength()
        io = [h.make_tensor_value_info(v, self.onnx.TensorProto.FLOAT, ["batch", n_in]) for v in "xy"]
        graph = h.make_graph([h.make_node("Identity", ["x"], ["y"], name="Identity:y")],
                             "mtan identity", io[:1], io[1:])
        return self.finish(graph)

    def finish(self, graph):
        h = self.h
        model = h.make_model(graph, producer_name="mtan2onnx",
                             opset_imports=[h.make_opsetid("", OPSET)])
        model.ir_version = 8
        self.onnx.checker.check_model(model)
        return model

    def build(self, task_name):
        fb, np, h = self.fb, self.np, self.h
        tasks = [self.m.Tasks(k) for k in range(self.m.TasksLength())]
        names = [t.Name().decode() for t in tasks]
        if task_name == "all":
            chosen = list(range(len(tasks)))
            plan = list(range(self.m.OperatorsLength()))
        elif task_name in names:
            chosen = [names.index(task_name)]
            task = tasks[chosen[0]]
            plan = [int(o) for o in task.PlanAsNumpy()] if task.PlanLength() else []
        else:
            raise ExportError(f"no task '{task_name}' (tasks: {', '.join(names)}; or all)")
        n_in = self.m.InputsLength()
        self.names.add("x")
        self.value[self.m.InputTensor()] = "x"
        for o in plan:
            self.op(o)
        outs, width = [], 0
        for k in chosen:
            t = tasks[k].Output()
            if self.is_int8(t):
                raise ExportError(f"task '{names[k]}': int8 output tensor")
            v = self.value.get(t)
            if v is None:
                raise ExportError(f"task '{names[k]}': its plan does not compute its output")
            if tasks[k].Transform() == fb.OutputTransform.OutputTransform.EXPM1:
                # ONNX has no expm1: exp(v) - 1 (the outputs are spend
                # amounts, where the difference is below float noise).
                v = self.node("Exp", [v], f"{names[k]}.exp")
                v = self.node("Sub", [v, self.init(f"{names[k]}.one", np.array(1, np.float32))],
                              f"{names[k]}.expm1")
            outs.append(v)
            width += int(self.tensor(t).Shape(0))
        y = outs[0] if len(outs) == 1 else self.node("Concat", outs, "all.outputs", axis=1)
        # The last node writes "y" (an Identity only if y is also read inside).
        used = any(y in n.input for n in self.nodes)
        last = next((n for n in self.nodes if y in n.output), None)
        if last is None or used:
            self.nodes.append(h.make_node("Identity", [y], ["y"], name="Identity:y"))
        else:
            last.output[list(last.output).index(y)] = "y"
        graph = h.make_graph(
            self.nodes, f"mtan {task_name}",
            [h.make_tensor_value_info("x", self.onnx.TensorProto.FLOAT, ["batch", n_in])],
            [h.make_tensor_value_info("y", self.onnx.TensorProto.FLOAT, ["batch", width])],
            self.inits)
        return self.finish(graph)


def main(argv):
    p = argparse.ArgumentParser(prog="mtan2onnx.py", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a .mtan file (float32 or int8)")
    p.add_argument("--task", default="all", help="a task name or 'all' (default)")
    p.add_argument("--identity", action="store_true",
                   help="write y = x for the model's input instead (the binding's own cost)")
    p.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    p.add_argument("--activations", choices=["uint8", "int8"], default="uint8",
                   help="ONNX type of an int8 model's activations (default uint8, what ORT's "
                   "x86 kernels take; int8: the file's literal types)")
    p.add_argument("--schema-py", help="folder holding flatc --python's mtan/fb package "
                   "(default: build/generated/python beside this script's tree)")
    args = p.parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    schema_py = args.schema_py or os.path.join(here, "..", "..", "..", "build", "generated", "python")
    if not os.path.isfile(os.path.join(schema_py, "mtan", "fb", "Model.py")):
        print(f"mtan2onnx: no flatc --python code of schema/mtan.fbs in {schema_py} "
              "(build mtan first, or give --schema-py)", file=sys.stderr)
        return 1
    sys.path.insert(0, schema_py)
    try:
        import numpy as np
        import onnx
        import onnx.numpy_helper  # noqa: F401
        import flatbuffers  # noqa: F401
        import mtan.fb as fb
        import mtan.fb.Model  # noqa: F401
        import mtan.fb.DType  # noqa: F401
        import mtan.fb.OpCode  # noqa: F401
        import mtan.fb.Activation  # noqa: F401
        import mtan.fb.OutputTransform  # noqa: F401
    except ImportError as e:
        print(f"mtan2onnx: {e} (Debian 12: apt-get install python3-onnx python3-numpy "
              "python3-flatbuffers, or tools/setup.sh; run Debian's /usr/bin/python3)",
              file=sys.stderr)
        return 1
    try:
        exporter = Exporter(read_model(args.model, fb), fb, np, onnx, args.activations)
        model = exporter.identity() if args.identity else exporter.build(args.task)
        tmp = args.output + ".tmp"
        onnx.save(model, tmp)
        os.replace(tmp, args.output)
    except ExportError as e:
        print(f"mtan2onnx: {args.model}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"mtan2onnx: {e}", file=sys.stderr)
        return 1
    except (IndexError, ValueError, struct.error, onnx.checker.ValidationError) as e:
        print(f"mtan2onnx: {args.model}: malformed model ({type(e).__name__}: {e})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
