// The part of autocannon's API bench/serve.ts uses (the package ships no types).
declare module "autocannon" {
  interface Result {
    requests: { total: number };
    latency: { p50: number; p99: number };
    non2xx: number;
  }
  function autocannon(opts: {
    url: string;
    method: string;
    connections: number;
    duration: number;
    headers: Record<string, string>;
    body: string;
  }): Promise<Result>;
  export default autocannon;
}
