// A map module: its default export is the function shipped to the workers, one call per input.
// crowdcompute map examples/square.ts examples/inputs.json
export default function square(x: number): number {
  return x * x;
}
