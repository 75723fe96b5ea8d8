//go:build race

package xml

// raceEnabled: under the race detector sync.Pool drops items at random, so
// steady-state allocation counts are meaningless.
const raceEnabled = true
