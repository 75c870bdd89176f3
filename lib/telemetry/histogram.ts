/**
 * telemetry/histogram.ts — a fixed-memory latency/size histogram (log-linear buckets: 16 linear
 * sub-buckets per power of two, so any recorded value is reported within ~6%). Records
 * non-negative numbers (microseconds for latencies); percentiles come from bucket upper edges.
 */

const SUB = 16;
const BUCKETS = 64 * SUB;

export interface HistogramSummary {
  count: number;
  min: number;
  max: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
}

export class Histogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #sum = 0;
  #min = Infinity;
  #max = 0;

  record(value: number): void {
    const v = value > 0 ? value : 0;
    this.#counts[bucketOf(v)]!++;
    this.#count++;
    this.#sum += v;
    if (v < this.#min) this.#min = v;
    if (v > this.#max) this.#max = v;
  }

  get count(): number {
    return this.#count;
  }

  percentile(p: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.ceil((p / 100) * this.#count);
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.#counts[b]!;
      if (seen >= rank) return Math.min(upperEdge(b), this.#max);
    }
    return this.#max;
  }

  summary(): HistogramSummary {
    return {
      count: this.#count,
      min: this.#count ? this.#min : 0,
      max: this.#max,
      mean: this.#count ? this.#sum / this.#count : 0,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      p999: this.percentile(99.9),
    };
  }
}

export function bucketOf(v: number): number {
  if (v < SUB) return Math.floor(v);
  if (v < 0x40000000) {
    // the same bucket without log2 and pow (recorded per commit, twice): floor(log2(v)) is
    // floor(log2(floor(v))) for v >= 1, the bit length of an integer below 2^30 minus one
    const e = 31 - Math.clz32(v | 0);
    const base = 1 << e; // SUB * 2 ** (e - 4)
    return SUB + (e - 4) * SUB + Math.min(Math.floor(((v - base) * SUB) / base), SUB - 1);
  }
  const exp = Math.floor(Math.log2(v / SUB));
  const base = SUB * 2 ** exp;
  const sub = Math.floor((v - base) / (base / SUB));
  return Math.min(BUCKETS - 1, SUB + exp * SUB + Math.min(sub, SUB - 1));
}

function upperEdge(b: number): number {
  if (b < SUB) return b + 1;
  const exp = Math.floor((b - SUB) / SUB);
  const sub = (b - SUB) % SUB;
  const base = SUB * 2 ** exp;
  return base + (sub + 1) * (base / SUB);
}
