package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Reconnection delays of a Notify listener whose connection failed: from
// listenRetryMin, doubling, up to listenRetryMax, with ±25% jitter.
const (
	listenRetryMin = 100 * time.Millisecond
	listenRetryMax = 5 * time.Second
)

// listenIdle is how long a Notify listener waits for a notification before
// it checks its connection with a ping, answered within listenPingTimeout: a
// connection that died without a word (a dropped route, a NAT that forgot
// it) would otherwise keep the listener waiting until TCP keepalive gives up.
// Variables so that tests can shorten them.
var listenIdle, listenPingTimeout = durationVar(30 * time.Second), durationVar(5 * time.Second)

// durationVar is a duration that tests may change while listeners run.
type durationVar time.Duration

func (v *durationVar) get() time.Duration  { return time.Duration(atomic.LoadInt64((*int64)(v))) }
func (v *durationVar) set(d time.Duration) { atomic.StoreInt64((*int64)(v), int64(d)) }

// ListenerApplicationName is the application_name of the connection a
// Notify listener holds, so it can be told apart in pg_stat_activity.
const ListenerApplicationName = "hookline listener"

// Notify returns a channel that receives a value when deliveries may have
// become due because some process inserted one into this Store's schema
// (through Insert or Tx), until ctx ends. It implements store.Notifier; a
// Deliverer calls it on Start.
//
// Each call starts a goroutine that holds one dedicated connection, opened
// with the pool's connection settings and its BeforeConnect and
// AfterConnect hooks, but outside the pool, and LISTENs on
// the schema's channel. Values are coalesced: the channel holds at most one,
// and a slow reader misses nothing but repeats. When the connection drops,
// or does not answer a ping after 30 s without notifications (a connection
// that died without a word), the listener reconnects with growing delays
// (100 ms up to 5 s), and sends
// one value once it listens again, since notifications sent meanwhile were
// lost; a Deliverer's polling covers the gap. When ctx ends, the goroutine
// closes its connection and returns. The channel is never closed.
func (s *Store) Notify(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	if s.made() != nil || ctx == nil {
		return ch // never ready: the Deliverer polls, and its Store calls fail
	}
	go s.listen(ctx, ch)
	return ch
}

func signal(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// listen runs one Notify listener until ctx ends.
func (s *Store) listen(ctx context.Context, ch chan<- struct{}) {
	delay := listenRetryMin
	for reconnect := false; ; reconnect = true {
		listening, err := s.listenOnce(ctx, ch, reconnect)
		if ctx.Err() != nil {
			return
		}
		if listening {
			delay = listenRetryMin
		}
		what := "could not listen"
		if listening {
			what = "lost its connection"
		}
		s.log.Warn("hookline: notification listener "+what+"; reconnecting (polling covers the gap)",
			"schema", s.schema, "retry_in", delay, "error", err)
		t := time.NewTimer(delay + time.Duration((rand.Float64()-0.5)*0.5*float64(delay)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, listenRetryMax)
	}
}

// listenOnce connects, listens and forwards notifications until the
// connection fails or ctx ends. listening reports whether it got as far as
// LISTEN.
func (s *Store) listenOnce(ctx context.Context, ch chan<- struct{}, reconnect bool) (listening bool, err error) {
	pc := s.pool.Config() // a copy
	cfg := pc.ConnConfig
	// The pool's hooks too: they may supply a short-lived password or the
	// current host, or set up each session.
	if pc.BeforeConnect != nil {
		if err := pc.BeforeConnect(ctx, cfg); err != nil {
			return false, err
		}
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = ListenerApplicationName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, err
	}
	defer func() {
		// ctx may be over: close with a fresh deadline.
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if pc.AfterConnect != nil {
		if err := pc.AfterConnect(ctx, conn); err != nil {
			return false, err
		}
	}
	// The listener waits without a query between its pings: a shorter
	// idle_session_timeout of the role or the connection string would end
	// it over and over. (Servers before PostgreSQL 14 do not know the
	// setting, and end no idle session.)
	if _, err := conn.Exec(ctx, "SELECT set_config('idle_session_timeout', '0', false)"); err != nil && !undefinedSetting(err) {
		return false, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return false, err
	}
	if reconnect {
		signal(ch)
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdle.get())
		_, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			signal(ch)
			continue
		}
		if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return true, err
		}
		// Idle: a timeout leaves the connection usable; is it alive?
		pctx, cancel := context.WithTimeout(ctx, listenPingTimeout.get())
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return true, fmt.Errorf("no answer to a ping after %v without notifications: %w", listenIdle.get(), err)
		}
	}
}

// undefinedSetting reports whether err is the server's "unrecognized
// configuration parameter" (SQLSTATE 42704).
func undefinedSetting(err error) bool { return sqlState(err) == "42704" }
