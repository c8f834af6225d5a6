//go:build !race

package shield

// crsStride makes TestCRS run one CRS test in crsStride: all of them
// without the race detector.
const crsStride = 1
