package main

// raceFlag is added to the build of the hookline binary the tests run: -race
// when they run under -race (race_on_test.go), so that the command's own
// code is checked too.
var raceFlag []string
