// Package storetest is the conformance suite every hookline Store must pass.
//
// Run it from the tests of your Store, giving it a function that returns a
// fresh, empty store for each subtest (and frees it with t.Cleanup):
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			return newMyStore(t) // an empty store of its own, e.g. a new schema
//		})
//	}
//
// Each subtest is named after the behaviour it checks and logs the rule it
// enforces, so a failure says what the Store must do differently: payload
// bytes kept byte for byte, one pending delivery per batch, one automatic
// delivery per batch, exclusive and ordered claims, leases fenced by token,
// attempts recorded at most once and kept oldest first, history newest
// first, ErrNotFound for unknown deliveries, and copies in and out. A Store
// that implements the optional store.LeasedInserter is checked for it too;
// for one that does not, those subtests skip and say so.
//
// The suite never reads a clock: every time it passes is fixed, whole
// microseconds from 2026-05-06T10:00:00Z, and times are compared with
// time.Time.Equal, so a store may keep microsecond precision (as PostgreSQL
// does) and return times in any location.
package storetest
