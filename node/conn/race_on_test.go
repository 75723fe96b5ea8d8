//go:build race

package conn

// raceEnabled: the race detector makes sync.Pool drop items at random, so pool reuse cannot be counted.
const raceEnabled = true
