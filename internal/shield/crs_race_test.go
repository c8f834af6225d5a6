//go:build race

package shield

// crsStride makes TestCRS run one CRS test in crsStride: under the race
// detector the instrumented rule engine is some fifteen times slower, so
// it runs one in eight (the race detector looks at the gateway's
// concurrency, which a sample exercises as well).
const crsStride = 8
