/**
 * Exact-architecture ONNX graphs of the three named models (ResNet-18, MobileNet-V2 1.0,
 * EfficientNet-Lite0) with SEEDED SYNTHETIC weights. Real ResNet-18 / EfficientNet-Lite0
 * weights cannot be downloaded on the development machines, so tests and timing use these:
 * same ops, shapes, parameter counts and graph structure (Conv without bias → explicit
 * BatchNormalization with non-trivial running statistics → ReLU / Clip(0,6)), opset 13,
 * input `input` [N,3,224,224] (symbolic batch 'N'), output `logits` [N,1000].
 *
 * Must not: pretend to be trained (docString and metadata_props say SYNTHETIC), depend on
 * the project's graph IR (it writes ModelProto objects with onnx-proto directly so the IR
 * can be tested against it), or touch the DOM / file system (works in Node and a worker).
 */
import onnxProto from 'onnx-proto';
import type { ModelId } from './registry.ts';
import { mulberry32 } from '../util/random.ts';

const { onnx } = onnxProto;
type INodeProto = onnxProto.onnx.INodeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
type IAttributeProto = onnxProto.onnx.IAttributeProto;

export const SYNTHETIC_NOTE = 'SYNTHETIC seeded weights — not trained; for graph handling and timing only';

const A = onnx.AttributeProto.AttributeType;
const ints = (name: string, v: number[]): IAttributeProto => ({ name, type: A.INTS, ints: v });
const int = (name: string, v: number): IAttributeProto => ({ name, type: A.INT, i: v });
const float = (name: string, v: number): IAttributeProto => ({ name, type: A.FLOAT, f: v });

/** Accumulates nodes and initializers of one network; counts trainable parameters. */
class NetBuilder {
  readonly nodes: INodeProto[] = [];
  readonly inits: ITensorProto[] = [];
  params = 0;
  private readonly rand: () => number;
  private hasClipBounds = false;

  constructor(seed: number) {
    this.rand = mulberry32(seed);
  }

  /** n floats uniform in [lo, hi), filled in one pass. */
  private uniform(n: number, lo: number, hi: number): Float32Array {
    const out = new Float32Array(n);
    const span = hi - lo;
    for (let i = 0; i < n; i++) out[i] = lo + span * this.rand();
    return out;
  }

  private init(name: string, dims: number[], data: Float32Array, trainable: boolean): string {
    // rawData is little-endian float32; a Float32Array view is little-endian on every
    // platform JavaScript runs on in practice (x86, ARM).
    this.inits.push({
      name,
      dims,
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
    if (trainable) this.params += data.length;
    return name;
  }

  node(opType: string, name: string, inputs: string[], attribute: IAttributeProto[] = [], output = name): string {
    this.nodes.push({ opType, name, input: inputs, output: [output], attribute });
    return output;
  }

  /**
   * Conv without bias, He (Kaiming) uniform init: var = gain² / fan_in, so a ReLU-followed
   * conv (gain √2) keeps the second moment of its input; linear projections use gain 1.
   */
  conv(
    x: string,
    name: string,
    cin: number,
    cout: number,
    k: number,
    stride = 1,
    groups = 1,
    gain = Math.SQRT2,
  ): string {
    const fanIn = (cin / groups) * k * k;
    const bound = gain * Math.sqrt(3 / fanIn);
    const w = this.init(
      `${name}.weight`,
      [cout, cin / groups, k, k],
      this.uniform(cout * (cin / groups) * k * k, -bound, bound),
      true,
    );
    const p = (k - 1) >> 1;
    return this.node(
      'Conv',
      name,
      [x, w],
      [
        ints('dilations', [1, 1]),
        int('group', groups),
        ints('kernel_shape', [k, k]),
        ints('pads', [p, p, p, p]),
        ints('strides', [stride, stride]),
      ],
    );
  }

  /**
   * BatchNormalization with seeded, non-trivial statistics. γ²/var ≈ 1 on average so the
   * scale of activations is roughly preserved; `gammaScale` < 1 damps residual branches so
   * repeated additions do not blow activations up.
   */
  bn(x: string, name: string, c: number, gammaScale = 1): string {
    const gamma = this.uniform(c, 0.7 * gammaScale, 1.1 * gammaScale);
    const beta = this.uniform(c, -0.1, 0.1);
    const mean = this.uniform(c, -0.05, 0.05);
    const variance = this.uniform(c, 0.6, 1.4);
    const s = this.init(`${name}.weight`, [c], gamma, true);
    const b = this.init(`${name}.bias`, [c], beta, true);
    const m = this.init(`${name}.running_mean`, [c], mean, false);
    const v = this.init(`${name}.running_var`, [c], variance, false);
    return this.node('BatchNormalization', name, [x, s, b, m, v], [float('epsilon', 1e-5), float('momentum', 0.9)]);
  }

  relu(x: string, name: string): string {
    return this.node('Relu', name, [x]);
  }

  /** ReLU6 as Clip(0, 6) with shared scalar min/max initializers (opset ≥ 11 form). */
  relu6(x: string, name: string): string {
    if (!this.hasClipBounds) {
      this.init('relu6.min', [], new Float32Array([0]), false);
      this.init('relu6.max', [], new Float32Array([6]), false);
      this.hasClipBounds = true;
    }
    return this.node('Clip', name, [x, 'relu6.min', 'relu6.max']);
  }

  add(a: string, b: string, name: string): string {
    return this.node('Add', name, [a, b]);
  }

  /** GlobalAveragePool → Flatten → Gemm(transB=1) with PyTorch Linear init. */
  head(x: string, cin: number, classes: number, fcName: string): string {
    const pooled = this.node('GlobalAveragePool', 'avgpool', [x]);
    const flat = this.node('Flatten', 'flatten', [pooled], [int('axis', 1)]);
    const bound = 1 / Math.sqrt(cin);
    // A larger weight scale than PyTorch's default so the synthetic logits are spread out.
    const w = this.init(`${fcName}.weight`, [classes, cin], this.uniform(classes * cin, -4 * bound, 4 * bound), true);
    const b = this.init(`${fcName}.bias`, [classes], this.uniform(classes, -bound, bound), true);
    return this.node('Gemm', fcName, [flat, w, b], [float('alpha', 1), float('beta', 1), int('transB', 1)], 'logits');
  }

  finish(arch: string, seed: number): Uint8Array {
    const dim = (v: number | string) => (typeof v === 'string' ? { dimParam: v } : { dimValue: v });
    const valueInfo = (name: string, shape: (number | string)[]) => ({
      name,
      type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: shape.map(dim) } } },
    });
    const doc = `${arch}: ${SYNTHETIC_NOTE}. Seed ${seed}. Exact architecture, ${this.params} parameters.`;
    const model = onnx.ModelProto.create({
      irVersion: 7,
      opsetImport: [{ domain: '', version: 13 }],
      producerName: 'quantization-playground make-models',
      producerVersion: '1',
      docString: doc,
      metadataProps: [
        { key: 'synthetic', value: 'true' },
        { key: 'weights', value: SYNTHETIC_NOTE },
        { key: 'architecture', value: arch },
        { key: 'seed', value: String(seed) },
        { key: 'params', value: String(this.params) },
      ],
      graph: {
        name: arch,
        docString: doc,
        node: this.nodes,
        initializer: this.inits,
        input: [valueInfo('input', ['N', 3, 224, 224])],
        output: [valueInfo('logits', ['N', 1000])],
      },
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

/** torchvision resnet18: 11,689,512 parameters. */
export function buildResNet18(seed = 1): Uint8Array {
  const b = new NetBuilder(seed);
  let x = b.conv('input', 'conv1', 3, 64, 7, 2);
  x = b.relu(b.bn(x, 'bn1', 64), 'relu');
  x = b.node(
    'MaxPool',
    'maxpool',
    [x],
    [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1]), ints('strides', [2, 2])],
  );
  let cin = 64;
  const widths = [64, 128, 256, 512];
  widths.forEach((c, si) => {
    for (let bi = 0; bi < 2; bi++) {
      const p = `layer${si + 1}.${bi}`;
      const stride = si > 0 && bi === 0 ? 2 : 1;
      let y = b.conv(x, `${p}.conv1`, cin, c, 3, stride);
      y = b.relu(b.bn(y, `${p}.bn1`, c), `${p}.relu1`);
      y = b.conv(y, `${p}.conv2`, c, c, 3, 1);
      y = b.bn(y, `${p}.bn2`, c, 0.5);
      let identity = x;
      if (stride !== 1 || cin !== c) {
        identity = b.conv(x, `${p}.downsample.0`, cin, c, 1, stride, 1, 1);
        identity = b.bn(identity, `${p}.downsample.1`, c, 0.5);
      }
      x = b.relu(b.add(y, identity, `${p}.add`), `${p}.relu2`);
      cin = c;
    }
  });
  b.head(x, 512, 1000, 'fc');
  return b.finish('ResNet-18 (torchvision layout)', seed);
}

/** torchvision mobilenet_v2 (width 1.0): 3,504,872 parameters. Dropout omitted (eval export). */
export function buildMobileNetV2(seed = 1): Uint8Array {
  const b = new NetBuilder(seed);
  const convBnRelu6 = (x: string, name: string, cin: number, cout: number, k: number, stride = 1, groups = 1) =>
    b.relu6(b.bn(b.conv(x, `${name}.0`, cin, cout, k, stride, groups), `${name}.1`, cout), `${name}.2`);
  let x = convBnRelu6('input', 'features.0', 3, 32, 3, 2);
  let cin = 32;
  let idx = 1;
  const settings: [number, number, number, number][] = [
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
  ];
  for (const [t, c, n, s] of settings) {
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1;
      const hidden = Math.round(cin * t);
      const p = `features.${idx}.conv`;
      let y = x;
      let li = 0;
      if (t !== 1) y = convBnRelu6(y, `${p}.${li++}`, cin, hidden, 1);
      y = convBnRelu6(y, `${p}.${li++}`, hidden, hidden, 3, stride, hidden);
      y = b.conv(y, `${p}.${li++}`, hidden, c, 1, 1, 1, 1);
      const useRes = stride === 1 && cin === c;
      y = b.bn(y, `${p}.${li}`, c, useRes ? 0.5 : 1);
      x = useRes ? b.add(x, y, `features.${idx}.add`) : y;
      cin = c;
      idx++;
    }
  }
  x = convBnRelu6(x, `features.${idx}`, cin, 1280, 1);
  b.head(x, 1280, 1000, 'classifier.1');
  return b.finish('MobileNet-V2 1.0 (torchvision layout)', seed);
}

/**
 * timm efficientnet_lite0: 4,652,008 parameters. EfficientNet-B0 block layout without
 * squeeze-excitation, ReLU6 everywhere, stem 32 and head 1280 not scaled.
 * Stages (expand ratio, kernel, repeats, channels, stride) as timm's arch_def:
 * ds_r1_k3_s1_e1_c16, ir_r2_k3_s2_e6_c24, ir_r2_k5_s2_e6_c40, ir_r3_k3_s2_e6_c80,
 * ir_r3_k5_s1_e6_c112, ir_r4_k5_s2_e6_c192, ir_r1_k3_s1_e6_c320.
 */
export function buildEfficientNetLite0(seed = 1): Uint8Array {
  const b = new NetBuilder(seed);
  let x = b.relu6(b.bn(b.conv('input', 'conv_stem', 3, 32, 3, 2), 'bn1', 32), 'act1');
  let cin = 32;
  const stages: [number, number, number, number, number][] = [
    [1, 3, 1, 16, 1],
    [6, 3, 2, 24, 2],
    [6, 5, 2, 40, 2],
    [6, 3, 3, 80, 2],
    [6, 5, 3, 112, 1],
    [6, 5, 4, 192, 2],
    [6, 3, 1, 320, 1],
  ];
  stages.forEach(([e, k, n, c, s], si) => {
    for (let i = 0; i < n; i++) {
      const p = `blocks.${si}.${i}`;
      const stride = i === 0 ? s : 1;
      const hasSkip = stride === 1 && cin === c;
      let y = x;
      if (e === 1) {
        // DepthwiseSeparableConv: conv_dw → bn1 → act → conv_pw → bn2 (no activation)
        y = b.relu6(b.bn(b.conv(y, `${p}.conv_dw`, cin, cin, k, stride, cin), `${p}.bn1`, cin), `${p}.act1`);
        y = b.bn(b.conv(y, `${p}.conv_pw`, cin, c, 1, 1, 1, 1), `${p}.bn2`, c, hasSkip ? 0.5 : 1);
      } else {
        // InvertedResidual: conv_pw → bn1 → act → conv_dw → bn2 → act → conv_pwl → bn3
        const mid = cin * e;
        y = b.relu6(b.bn(b.conv(y, `${p}.conv_pw`, cin, mid, 1), `${p}.bn1`, mid), `${p}.act1`);
        y = b.relu6(b.bn(b.conv(y, `${p}.conv_dw`, mid, mid, k, stride, mid), `${p}.bn2`, mid), `${p}.act2`);
        y = b.bn(b.conv(y, `${p}.conv_pwl`, mid, c, 1, 1, 1, 1), `${p}.bn3`, c, hasSkip ? 0.5 : 1);
      }
      x = hasSkip ? b.add(y, x, `${p}.add`) : y;
      cin = c;
    }
  });
  x = b.relu6(b.bn(b.conv(x, 'conv_head', cin, 1280, 1), 'bn2', 1280), 'act2');
  b.head(x, 1280, 1000, 'classifier');
  return b.finish('EfficientNet-Lite0 (timm efficientnet_lite0 layout)', seed);
}

/** Builder per registry id (parameter counts and file names live in the registry). */
export const SYNTHETIC_BUILDERS: Record<ModelId, (seed?: number) => Uint8Array> = {
  resnet18: buildResNet18,
  'mobilenet-v2': buildMobileNetV2,
  'efficientnet-lite0': buildEfficientNetLite0,
};

/**
 * Trainable parameters of an ONNX model, counted as PyTorch does: every non-scalar
 * initializer except BatchNormalization running mean / variance (inputs 3 and 4).
 * Scalars (Clip bounds and similar constants) are not parameters. Works on BN-folded
 * models too (then there are no BN inputs to exclude). Throws if the bytes are not ONNX.
 */
export function countParams(bytes: Uint8Array): number {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  if (!graph) return 0;
  const runningStats = new Set<string>();
  for (const n of graph.node ?? []) {
    if (n.opType === 'BatchNormalization') {
      if (n.input?.[3]) runningStats.add(n.input[3]);
      if (n.input?.[4]) runningStats.add(n.input[4]);
    }
  }
  let total = 0;
  for (const t of graph.initializer ?? []) {
    const dims = (t.dims ?? []).map(Number);
    if (dims.length === 0 || runningStats.has(t.name ?? '')) continue;
    total += dims.reduce((a, d) => a * d, 1);
  }
  return total;
}
