// Package store defines where hookline keeps deliveries: the Store interface,
// the delivery and attempt records (whose JSON is the record hosts return from
// their routes), status and failure codes, sentinel errors, and the in-memory
// Store that is the embedded default.
//
// The package is the leaf of hookline: delivery imports it, never the reverse.
//
// # Leases and fencing
//
// Workers take due deliveries with Claim, which leases each one (a random token
// and an expiry) and moves its NextAttemptAt to the expiry. The worker then
// sends one attempt and reports it with Record, which succeeds only while its
// token is still the delivery's current lease. If the worker dies, the lease
// expires, the delivery becomes due again, and the next Claim hands it to
// another worker with a new token; a late Record from the first worker then
// fails with ErrLeaseLost and changes nothing. So an attempt is recorded at
// most once, and a crash can at worst repeat the request that was in flight.
//
// # Writing a Store
//
// Implement the seven methods and run the conformance suite from your tests:
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return newMyStore(t) })
//	}
package store
