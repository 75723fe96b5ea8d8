//go:build !race

package xml

// raceEnabled reports whether the race detector is on (see race_test.go).
const raceEnabled = false
