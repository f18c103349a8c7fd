/** JSON-RPC straight to a node: many calls in one HTTP request (viem's clients send one each). */
export type RpcCall = { method: string; params?: unknown[] };

export async function rpcBatch(url: string, calls: readonly RpcCall[]): Promise<unknown[]> {
  if (calls.length === 0) return [];
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(calls.map((c, id) => ({ jsonrpc: "2.0", id, method: c.method, params: c.params ?? [] }))),
  });
  const body = (await res.json()) as { id: number; result?: unknown; error?: { message: string } }[];
  const out: unknown[] = new Array(calls.length);
  for (const r of body) {
    if (r.error) throw new Error(`${calls[r.id]!.method}: ${r.error.message}`);
    out[r.id] = r.result;
  }
  return out;
}

export const rpc = async <T>(url: string, method: string, params: unknown[] = []): Promise<T> =>
  (await rpcBatch(url, [{ method, params }]))[0] as T;
