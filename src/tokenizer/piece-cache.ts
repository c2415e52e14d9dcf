// A bounded piece → ids cache with least-recently-used-ish eviction at the cost of two Map lookups:
// entries live in `young`; when it fills up it becomes `old` (the previous `old` is dropped), and a hit in
// `old` is copied back into `young`. Long pieces are not cached: they rarely repeat and would pin memory.

const MAX_PIECE_LENGTH = 256;

export class PieceCache {
  private young = new Map<string, number[]>();
  private old = new Map<string, number[]>();

  constructor(private readonly capacity = 65536) {}

  get(piece: string): number[] | undefined {
    const hit = this.young.get(piece);
    if (hit !== undefined) return hit;
    const aged = this.old.get(piece);
    if (aged !== undefined) this.set(piece, aged);
    return aged;
  }

  set(piece: string, ids: number[]): void {
    if (piece.length > MAX_PIECE_LENGTH) return;
    if (this.young.size >= this.capacity) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(piece, ids);
  }

  clear(): void {
    this.young.clear();
    this.old.clear();
  }
}
