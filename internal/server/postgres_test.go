package server_test

import (
	"context"
	"testing"

	"github.com/vaultcrux/vaultcrux/internal/store"
	"github.com/vaultcrux/vaultcrux/internal/store/postgres"
	"github.com/vaultcrux/vaultcrux/internal/store/postgres/pgtest"
	"github.com/vaultcrux/vaultcrux/internal/vctest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestOnPostgres runs the pipeline scenarios over PostgreSQL as an
// ordinary role, so that row-level security is in force underneath.
func TestOnPostgres(t *testing.T) {
	open := func(t *testing.T, opts ...vctest.Option) *vctest.Env {
		db, err := postgres.Open(context.Background(), pgtest.DSN(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
		if bypass, err := db.RLSBypassed(context.Background()); err != nil || bypass {
			t.Fatalf("test role bypasses RLS (%v, %v): the scenarios would prove nothing", bypass, err)
		}
		return vctest.NewWithStore(t, db, opts...)
	}
	t.Run("TenantIsolation", func(t *testing.T) { testTenantIsolation(t, open(t)) })
	t.Run("Idempotency", func(t *testing.T) { testIdempotency(t, open(t)) })
	t.Run("Keys", func(t *testing.T) { testKeys(t, open(t)) })
	t.Run("ConcurrentLastOwnerRevocation", func(t *testing.T) { testConcurrentLastOwnerRevocation(t, open(t)) })

	// Seats and the frontdoor session.
	t.Run("RouteMatrix", func(t *testing.T) { testRouteMatrix(t, open(t, seatsOn)) })
	t.Run("ConcurrentDemotionOfLastTwoOwners", func(t *testing.T) {
		e := open(t, seatsOn)
		testConcurrentDemotionOfLastTwoOwners(t, e, vctest.NewWithStore(t, e.Store, seatsOn))
	})
	t.Run("LastOwner", func(t *testing.T) { testLastOwner(t, open(t, seatsOn)) })
	t.Run("InviteReuse", func(t *testing.T) { testInviteReuse(t, open(t, seatsOn)) })
	t.Run("SeatRevocation", func(t *testing.T) { testSeatRevocation(t, open(t, seatsOn)) })
	t.Run("CookieRevoked", func(t *testing.T) { testCookieRevoked(t, open(t, seatsOn)) })
	t.Run("CookieCrossSitePost", func(t *testing.T) { testCookieCrossSitePost(t, open(t, seatsOn)) })
	t.Run("OrgSessions", func(t *testing.T) { testOrgSessions(t, open(t, seatsOn)) })

	// Shield: the prompt-injection scenarios, the approval-token attacks
	// (token consumption and binding are store code) and a kill switch
	// seen by a second server through the store's version bump.
	t.Run("ShieldPromptInjection", func(t *testing.T) {
		testShieldPromptInjection(t, func(t *testing.T) *vctest.Env { return open(t) })
	})
	t.Run("ShieldApprovalTokens", func(t *testing.T) { testShieldApprovalTokens(t, open(t)) })
	t.Run("ShieldTaintAcrossReplicas", func(t *testing.T) {
		testShieldTaintAcrossReplicas(t, open(t), func(t *testing.T, st store.Store) *vctest.Env { return vctest.NewWithStore(t, st) })
	})
	t.Run("ShieldKillSwitchAcrossReplicas", func(t *testing.T) {
		testShieldKillSwitchAcrossReplicas(t, open(t), func(t *testing.T, st store.Store) *vctest.Env { return vctest.NewWithStore(t, st) })
	})
}
