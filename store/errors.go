package store

import "errors"

// ErrNotFound is returned when no delivery matches the id or batch asked for.
var ErrNotFound = errors.New("store: delivery not found")

// ErrConflict is returned by Store.Insert when the batch already has a
// delivery in flight (pending), or when an automatic delivery is inserted for
// a batch that already has one. The existing delivery is left untouched.
var ErrConflict = errors.New("store: conflicting delivery for the batch")

// ErrLeaseLost is returned by Store.Record and Store.Release when the caller's
// lease token is no longer the delivery's current one: another worker claimed
// it after the lease expired, or the outcome was already recorded. Nothing is
// changed.
var ErrLeaseLost = errors.New("store: lease lost")
