// The package ships no types: its default export is the Redis Cluster slot of a key.
declare module 'cluster-key-slot' {
  export default function calculateSlot(key: string | Buffer): number;
}
