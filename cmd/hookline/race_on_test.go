//go:build race

package main

// The tests run under -race: so does the binary they build.
func init() { raceFlag = []string{"-race"} }
