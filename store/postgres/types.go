package postgres

import (
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hookline/hookline/store"
)

// Parameters are passed as pgx's own types: a uuid.UUID would go through
// driver.Valuer (formatted as text and parsed again), which costs more than
// the rest of the encoding.

func pgUUID(u uuid.UUID) pgtype.UUID { return pgtype.UUID{Bytes: u, Valid: true} }

func pgNullUUID(u uuid.NullUUID) pgtype.UUID { return pgtype.UUID{Bytes: u.UUID, Valid: u.Valid} }

// pgText is s for a nullable text column: NULL when empty, else s made
// storable (see store.StorableText).
func pgText(s string) pgtype.Text {
	if s == "" {
		return pgtype.Text{}
	}
	return pgtype.Text{String: store.StorableText(s), Valid: true}
}

// pgTime is t for a nullable timestamptz column: NULL when zero.
func pgTime(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}
