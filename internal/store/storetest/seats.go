package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vaultcrux/vaultcrux"
	"github.com/vaultcrux/vaultcrux/internal/store"
)

func seat(tenant, id, email string, role vaultcrux.Role) *vaultcrux.Seat {
	return &vaultcrux.Seat{
		ID:        id,
		Tenant:    vaultcrux.TenantID(tenant),
		Email:     email,
		Role:      role,
		CreatedAt: t0,
	}
}

// seatCreated is the role change that records the creation of s.
func seatCreated(s *vaultcrux.Seat) *vaultcrux.SeatRoleChange {
	return &vaultcrux.SeatRoleChange{ID: "create-" + s.ID, SeatID: s.ID, NewRole: s.Role, Actor: "key:boot", At: s.CreatedAt}
}

func roleChange(id, seatID string, from, to vaultcrux.Role, at time.Time) *vaultcrux.SeatRoleChange {
	return &vaultcrux.SeatRoleChange{ID: id, SeatID: seatID, OldRole: from, NewRole: to, Actor: "seat:admin", At: at}
}

func createSeats(t *testing.T, st store.Store, seats ...*vaultcrux.Seat) {
	t.Helper()
	for _, s := range seats {
		tenTx(t, st, string(s.Tenant), func(tx store.TenantTx) error { return tx.CreateSeat(s, seatCreated(s)) })
	}
}

func getSeat(t *testing.T, st store.Store, tenant, id string) *vaultcrux.Seat {
	t.Helper()
	var s *vaultcrux.Seat
	tenTx(t, st, tenant, func(tx store.TenantTx) (err error) {
		s, err = tx.GetSeat(id)
		return err
	})
	return s
}

func seatHistory(t *testing.T, st store.Store, tenant, id string) []*vaultcrux.SeatRoleChange {
	t.Helper()
	var h []*vaultcrux.SeatRoleChange
	tenTx(t, st, tenant, func(tx store.TenantTx) (err error) {
		h, err = tx.SeatRoleHistory(id)
		return err
	})
	return h
}

func countSeats(t *testing.T, st store.Store, tenant string) int {
	t.Helper()
	var n int
	tenTx(t, st, tenant, func(tx store.TenantTx) (err error) {
		n, err = tx.CountSeats()
		return err
	})
	return n
}

func tryChangeRole(t *testing.T, st store.Store, tenant string, c *vaultcrux.SeatRoleChange) (*vaultcrux.Seat, error) {
	var s *vaultcrux.Seat
	err := st.ForTenant(vaultcrux.TenantID(tenant)).Tx(t.Context(), func(tx store.TenantTx) (err error) {
		s, err = tx.ChangeSeatRole(c)
		return err
	})
	return s, err
}

func seatKey(tenant, id, seatID string) *vaultcrux.APIKey {
	k := apiKey(tenant, id, vaultcrux.RoleMember)
	k.SeatID = seatID
	return k
}

func (s *suite) seatTests() []test {
	return []test{
		{"CreateGet", func(t *testing.T) {
			st := s.fresh(t)
			if n := countSeats(t, st, acme); n != 0 {
				t.Errorf("CountSeats on a new tenant = %d, want 0", n)
			}
			want := seat(acme, "s1", "Ann@Example.com", vaultcrux.RoleOwner)
			revoked := seat(acme, "s2", "bob@example.com", vaultcrux.RoleViewer)
			revoked.RevokedAt = ptr(t0.Add(time.Hour))
			createSeats(t, st, want, revoked)
			for _, w := range []*vaultcrux.Seat{want, revoked} {
				if diff := cmp.Diff(w, getSeat(t, st, acme, w.ID)); diff != "" {
					t.Errorf("GetSeat(%s) (-want +got):\n%s", w.ID, diff)
				}
			}
			if diff := cmp.Diff([]*vaultcrux.SeatRoleChange{seatCreated(want)}, seatHistory(t, st, acme, "s1")); diff != "" {
				t.Errorf("SeatRoleHistory after create (-want +got):\n%s", diff)
			}
			if got, want := countSeats(t, st, acme), 2; got != want {
				t.Errorf("CountSeats = %d, want %d (revoked included)", got, want)
			}
			err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.GetSeat("nope")
				return err
			})
			checkKind(t, "GetSeat(missing)", err, vaultcrux.NotFound)
		}},
		{"CreateRejected", func(t *testing.T) {
			st := s.fresh(t)
			create := func(s *vaultcrux.Seat, c *vaultcrux.SeatRoleChange) error {
				return st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error { return tx.CreateSeat(s, c) })
			}
			bad := seat(acme, "s1", "a@example.com", "root")
			checkKind(t, "CreateSeat(role root)", create(bad, seatCreated(bad)), vaultcrux.Invalid)
			other := seat(bravo, "s1", "a@example.com", vaultcrux.RoleMember)
			checkKind(t, "CreateSeat(other tenant's record)", create(other, seatCreated(other)), vaultcrux.Internal)
			good := seat(acme, "s1", "a@example.com", vaultcrux.RoleMember)
			wrong := seatCreated(good)
			wrong.NewRole = vaultcrux.RoleOwner
			checkKind(t, "CreateSeat(change of another role)", create(good, wrong), vaultcrux.Internal)
			ghost := seat("ghost", "s1", "a@example.com", vaultcrux.RoleMember)
			err := st.ForTenant("ghost").Tx(t.Context(), func(tx store.TenantTx) error { return tx.CreateSeat(ghost, seatCreated(ghost)) })
			checkKind(t, "CreateSeat(tenant missing)", err, vaultcrux.NotFound)
			if n := countSeats(t, st, acme); n != 0 {
				t.Errorf("CountSeats after refused creates = %d, want 0", n)
			}
		}},
		{"DuplicateEmail", func(t *testing.T) {
			st := s.fresh(t)
			first := seat(acme, "s1", "Ann@Example.com", vaultcrux.RoleOwner)
			createSeats(t, st, first)
			for _, dup := range []*vaultcrux.Seat{
				seat(acme, "s2", "ann@example.COM", vaultcrux.RoleMember),
				seat(acme, "s1", "other@example.com", vaultcrux.RoleMember),
			} {
				err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error { return tx.CreateSeat(dup, seatCreated(dup)) })
				checkKind(t, fmt.Sprintf("CreateSeat(%s, %s)", dup.ID, dup.Email), err, vaultcrux.Conflict)
			}
			if got := countSeats(t, st, acme); got != 1 {
				t.Errorf("CountSeats after refused duplicates = %d, want 1", got)
			}
			// Another tenant's seats do not take the email.
			createSeats(t, st, seat(bravo, "s1", "ann@example.com", vaultcrux.RoleOwner))
			// A revoked seat gives its email back.
			tenTx(t, st, acme, func(tx store.TenantTx) error {
				_, err := tx.RevokeSeat("s1", t0.Add(time.Hour))
				return err
			})
			again := seat(acme, "s3", "ANN@example.com", vaultcrux.RoleMember)
			createSeats(t, st, again)
			if diff := cmp.Diff(again, getSeat(t, st, acme, "s3")); diff != "" {
				t.Errorf("seat reusing a revoked seat's email (-want +got):\n%s", diff)
			}
			if got := countSeats(t, st, acme); got != 2 {
				t.Errorf("CountSeats = %d, want 2", got)
			}
		}},
		{"List", func(t *testing.T) {
			st := s.fresh(t)
			var want []*vaultcrux.Seat
			for _, id := range []string{"s3", "s1", "s5", "S0", "s2", "s4"} {
				createSeats(t, st, seat(acme, id, id+"@example.com", vaultcrux.RoleMember))
			}
			for _, id := range []string{"S0", "s1", "s2", "s3", "s4", "s5"} { // bytewise order
				want = append(want, seat(acme, id, id+"@example.com", vaultcrux.RoleMember))
			}
			createSeats(t, st, seat(bravo, "s0", "x@example.com", vaultcrux.RoleMember), seat(bravo, "s6", "y@example.com", vaultcrux.RoleMember))
			pages := []struct {
				after string
				limit int
				want  []*vaultcrux.Seat
			}{
				{"", 4, want[:4]},
				{"s3", 4, want[4:]},
				{"", 10, want},
				{"s2", 1, want[3:4]},
				{"s5", 4, nil},
				{"s22", 2, want[3:5]}, // a cursor need not exist
			}
			for _, p := range pages {
				var got []*vaultcrux.Seat
				tenTx(t, st, acme, func(tx store.TenantTx) (err error) {
					got, err = tx.ListSeats(p.after, p.limit)
					return err
				})
				if diff := cmp.Diff(p.want, got); diff != "" {
					t.Errorf("ListSeats(%q, %d) (-want +got):\n%s", p.after, p.limit, diff)
				}
			}
			err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.ListSeats("", 0)
				return err
			})
			checkKind(t, "ListSeats(limit 0)", err, vaultcrux.Invalid)
		}},
		{"ChangeRole", func(t *testing.T) {
			st := s.fresh(t)
			s1 := seat(acme, "s1", "a@example.com", vaultcrux.RoleMember)
			createSeats(t, st, s1)
			// Ids out of time order: the history is ordered by time.
			changes := []*vaultcrux.SeatRoleChange{
				roleChange("c9", "s1", vaultcrux.RoleMember, vaultcrux.RoleAdmin, t0.Add(time.Minute)),
				roleChange("c1", "s1", vaultcrux.RoleAdmin, vaultcrux.RoleOwner, t0.Add(2*time.Minute)),
			}
			want := seat(acme, "s1", "a@example.com", vaultcrux.RoleMember)
			for _, c := range changes {
				got, err := tryChangeRole(t, st, acme, c)
				if err != nil {
					t.Fatalf("ChangeSeatRole(%s): %v", c.ID, err)
				}
				want.Role = c.NewRole
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("ChangeSeatRole(%s) (-want +got):\n%s", c.ID, diff)
				}
			}
			wantHistory := append([]*vaultcrux.SeatRoleChange{seatCreated(s1)}, changes...)
			if diff := cmp.Diff(wantHistory, seatHistory(t, st, acme, "s1")); diff != "" {
				t.Errorf("SeatRoleHistory (-want +got):\n%s", diff)
			}

			// A change made from a stale reading of the role loses.
			_, err := tryChangeRole(t, st, acme, roleChange("c2", "s1", vaultcrux.RoleMember, vaultcrux.RoleViewer, t0.Add(3*time.Minute)))
			checkKind(t, "ChangeSeatRole(old role not current)", err, vaultcrux.Conflict)
			_, err = tryChangeRole(t, st, acme, roleChange("c3", "s1", vaultcrux.RoleOwner, "root", t0.Add(3*time.Minute)))
			checkKind(t, "ChangeSeatRole(to role root)", err, vaultcrux.Invalid)
			_, err = tryChangeRole(t, st, acme, roleChange("c4", "nope", vaultcrux.RoleMember, vaultcrux.RoleViewer, t0.Add(3*time.Minute)))
			checkKind(t, "ChangeSeatRole(missing seat)", err, vaultcrux.NotFound)
			_, err = tryChangeRole(t, st, acme, roleChange("c1", "s1", vaultcrux.RoleOwner, vaultcrux.RoleAdmin, t0.Add(3*time.Minute)))
			checkKind(t, "ChangeSeatRole(change id taken)", err, vaultcrux.Conflict)
			if diff := cmp.Diff(want, getSeat(t, st, acme, "s1")); diff != "" {
				t.Errorf("seat after refused changes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantHistory, seatHistory(t, st, acme, "s1")); diff != "" {
				t.Errorf("SeatRoleHistory after refused changes (-want +got):\n%s", diff)
			}

			tenTx(t, st, acme, func(tx store.TenantTx) error {
				_, err := tx.RevokeSeat("s1", t0.Add(time.Hour))
				return err
			})
			_, err = tryChangeRole(t, st, acme, roleChange("c5", "s1", vaultcrux.RoleOwner, vaultcrux.RoleAdmin, t0.Add(2*time.Hour)))
			checkKind(t, "ChangeSeatRole(revoked seat)", err, vaultcrux.NotFound)
		}},
		{"ChangeRoleUpdatesCredentials", func(t *testing.T) {
			// A demotion takes effect on the seat's keys and on the
			// sessions opened with them; revoked ones keep their record.
			st := s.fresh(t)
			createSeats(t, st, seat(acme, "s1", "a@example.com", vaultcrux.RoleMember), seat(acme, "s2", "b@example.com", vaultcrux.RoleMember))
			revokedKey := seatKey(acme, "k1-old", "s1")
			revokedKey.RevokedAt = ptr(t0)
			createKeys(t, st, seatKey(acme, "k1", "s1"), revokedKey, seatKey(acme, "k2", "s2"), apiKey(acme, "kt", vaultcrux.RoleMember))
			ended := session(acme, "sess-ended", "k1", "s1")
			ended.RevokedAt = ptr(t0)
			createSessions(t, st, session(acme, "sess-seat", "k1", "s1"), session(acme, "sess-key", "k1", ""), ended,
				session(acme, "sess-other", "k2", "s2"), session(acme, "sess-tenant", "kt", ""))

			// A refused change touches no credential.
			_, err := tryChangeRole(t, st, acme, roleChange("c0", "s1", vaultcrux.RoleViewer, vaultcrux.RoleOwner, t0))
			checkKind(t, "ChangeSeatRole(stale old role)", err, vaultcrux.Conflict)
			if got := getKey(t, st, acme, "k1").Role; got != vaultcrux.RoleMember {
				t.Errorf("k1 role after a refused change = %s, want member", got)
			}

			if _, err := tryChangeRole(t, st, acme, roleChange("c1", "s1", vaultcrux.RoleMember, vaultcrux.RoleAdmin, t0.Add(time.Minute))); err != nil {
				t.Fatalf("ChangeSeatRole: %v", err)
			}
			for id, want := range map[string]vaultcrux.Role{"k1": vaultcrux.RoleAdmin, "k1-old": vaultcrux.RoleMember, "k2": vaultcrux.RoleMember, "kt": vaultcrux.RoleMember} {
				if got := getKey(t, st, acme, id).Role; got != want {
					t.Errorf("key %s role = %s, want %s", id, got, want)
				}
			}
			for id, want := range map[string]vaultcrux.Role{"sess-seat": vaultcrux.RoleAdmin, "sess-key": vaultcrux.RoleAdmin, "sess-ended": vaultcrux.RoleMember, "sess-other": vaultcrux.RoleMember, "sess-tenant": vaultcrux.RoleMember} {
				if got := getSession(t, st, acme, id).Role; got != want {
					t.Errorf("session %s role = %s, want %s", id, got, want)
				}
			}
		}},
		{"AttachKeyToSeat", func(t *testing.T) {
			st := s.fresh(t)
			revokedSeat := seat(acme, "s2", "b@example.com", vaultcrux.RoleOwner)
			revokedSeat.RevokedAt = ptr(t0)
			createSeats(t, st, seat(acme, "s1", "a@example.com", vaultcrux.RoleOwner), revokedSeat, seat(bravo, "sb", "c@example.com", vaultcrux.RoleOwner))
			revokedKey := apiKey(acme, "kr", vaultcrux.RoleOwner)
			revokedKey.RevokedAt = ptr(t0)
			createKeys(t, st, apiKey(acme, "kt", vaultcrux.RoleMember), apiKey(acme, "ku", vaultcrux.RoleMember), revokedKey,
				seatKey(acme, "ks", "s1"), apiKey(bravo, "kb", vaultcrux.RoleOwner))
			createSessions(t, st, session(acme, "sess-kt", "kt", ""))

			var got *vaultcrux.APIKey
			tenTx(t, st, acme, func(tx store.TenantTx) (err error) {
				got, err = tx.AttachKeyToSeat("kt", "s1")
				return err
			})
			want := apiKey(acme, "kt", vaultcrux.RoleOwner) // the seat's role
			want.SeatID = "s1"
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("AttachKeyToSeat (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, getKey(t, st, acme, "kt")); diff != "" {
				t.Errorf("key after AttachKeyToSeat (-want +got):\n%s", diff)
			}
			if got := getSession(t, st, acme, "sess-kt").Role; got != vaultcrux.RoleOwner {
				t.Errorf("session of the attached key has role %s, want owner", got)
			}

			attach := func(tenant, key, seat string) error {
				return st.ForTenant(vaultcrux.TenantID(tenant)).Tx(t.Context(), func(tx store.TenantTx) error {
					_, err := tx.AttachKeyToSeat(key, seat)
					return err
				})
			}
			for _, c := range []struct {
				name, tenant, key, seat string
				want                    vaultcrux.Kind
			}{
				{"again", acme, "kt", "s1", vaultcrux.Conflict},
				{"key of another seat", acme, "ks", "s1", vaultcrux.Conflict},
				{"revoked key", acme, "kr", "s1", vaultcrux.NotFound},
				{"missing key", acme, "nope", "s1", vaultcrux.NotFound},
				{"revoked seat", acme, "ku", "s2", vaultcrux.NotFound},
				{"missing seat", acme, "ku", "nope", vaultcrux.NotFound},
				{"other tenant's seat", acme, "ku", "sb", vaultcrux.NotFound},
				{"other tenant's key", bravo, "ku", "sb", vaultcrux.NotFound},
			} {
				checkKind(t, "AttachKeyToSeat("+c.name+")", attach(c.tenant, c.key, c.seat), c.want, bravo)
			}
			if got := getKey(t, st, acme, "ku"); got.SeatID != "" || got.Role != vaultcrux.RoleMember {
				t.Errorf("ku after refused attaches: seat %q role %s, want none and member", got.SeatID, got.Role)
			}

			// The attached key now goes with its seat.
			tenTx(t, st, acme, func(tx store.TenantTx) error {
				_, err := tx.RevokeSeat("s1", t0.Add(time.Hour))
				return err
			})
			if got := getKey(t, st, acme, "kt").RevokedAt; got == nil {
				t.Error("the attached key survived the revocation of its seat")
			}
			if got := getSession(t, st, acme, "sess-kt").RevokedAt; got == nil {
				t.Error("the attached key's session survived the revocation of its seat")
			}
		}},
		{"Revoke", func(t *testing.T) {
			st := s.fresh(t)
			createSeats(t, st, seat(acme, "s1", "a@example.com", vaultcrux.RoleAdmin), seat(acme, "s2", "b@example.com", vaultcrux.RoleMember))
			oldRevoked := seatKey(acme, "k1-old", "s1")
			oldRevoked.RevokedAt = ptr(t0)
			createKeys(t, st, seatKey(acme, "k1", "s1"), oldRevoked, seatKey(acme, "k2", "s2"), apiKey(acme, "kt", vaultcrux.RoleOwner))
			createSessions(t, st,
				session(acme, "sess-seat", "k1", "s1"),
				session(acme, "sess-key", "k1", ""), // opened with the seat's key, seat not recorded
				session(acme, "sess-other", "k2", "s2"),
				session(acme, "sess-tenant", "kt", ""))

			at := t0.Add(time.Hour)
			want := seat(acme, "s1", "a@example.com", vaultcrux.RoleAdmin)
			want.RevokedAt = ptr(at)
			for i, when := range []time.Time{at, at.Add(time.Hour)} {
				var got *vaultcrux.Seat
				tenTx(t, st, acme, func(tx store.TenantTx) (err error) {
					got, err = tx.RevokeSeat("s1", when)
					return err
				})
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("RevokeSeat #%d (-want +got):\n%s", i+1, diff)
				}
			}
			for id, want := range map[string]*time.Time{"k1": ptr(at), "k1-old": ptr(t0), "k2": nil, "kt": nil} {
				if diff := cmp.Diff(want, getKey(t, st, acme, id).RevokedAt); diff != "" {
					t.Errorf("key %s RevokedAt (-want +got):\n%s", id, diff)
				}
			}
			for id, want := range map[string]*time.Time{"sess-seat": ptr(at), "sess-key": ptr(at), "sess-other": nil, "sess-tenant": nil} {
				if diff := cmp.Diff(want, getSession(t, st, acme, id).RevokedAt); diff != "" {
					t.Errorf("session %s RevokedAt (-want +got):\n%s", id, diff)
				}
			}
			if got := getSeat(t, st, acme, "s2"); got.Revoked() {
				t.Errorf("seat s2 revoked along with s1")
			}
			err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.RevokeSeat("nope", at)
				return err
			})
			checkKind(t, "RevokeSeat(missing)", err, vaultcrux.NotFound)
		}},
		{"LockActiveOwnerSeats", func(t *testing.T) {
			st := s.fresh(t)
			revoked := seat(acme, "o2", "o2@example.com", vaultcrux.RoleOwner)
			revoked.RevokedAt = ptr(t0)
			createSeats(t, st,
				seat(acme, "o1", "o1@example.com", vaultcrux.RoleOwner), revoked,
				seat(acme, "o3", "o3@example.com", vaultcrux.RoleOwner), seat(acme, "a1", "a1@example.com", vaultcrux.RoleAdmin),
				seat(bravo, "o4", "o4@example.com", vaultcrux.RoleOwner))
			// Owner keys are not owner seats.
			createKeys(t, st, apiKey(acme, "ko", vaultcrux.RoleOwner))
			for tenant, want := range map[string]int{acme: 2, bravo: 1} {
				var got int
				tenTx(t, st, tenant, func(tx store.TenantTx) (err error) {
					got, err = tx.LockActiveOwnerSeats()
					return err
				})
				if got != want {
					t.Errorf("%s: LockActiveOwnerSeats = %d, want %d", tenant, got, want)
				}
			}
		}},
		{"LockActiveOwnerSeatsConcurrent", func(t *testing.T) {
			// Two owners each demote their own seat unless it is the last
			// active owner. However the transactions interleave, exactly
			// one demotion must go through; each round adds a new owner
			// next to the survivor of the previous one.
			st := s.fresh(t)
			errLast := errors.New("last owner")
			survivor := "o0"
			createSeats(t, st, seat(acme, survivor, survivor+"@example.com", vaultcrux.RoleOwner))
			for round := 1; round <= 10; round++ {
				added := fmt.Sprintf("o%d", round)
				createSeats(t, st, seat(acme, added, added+"@example.com", vaultcrux.RoleOwner))
				ids := []string{survivor, added}
				errs := make([]error, len(ids))
				var wg sync.WaitGroup
				for i, id := range ids {
					wg.Go(func() {
						errs[i] = st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
							active, err := tx.LockActiveOwnerSeats()
							if err != nil {
								return err
							}
							if active <= 1 {
								return errLast
							}
							_, err = tx.ChangeSeatRole(roleChange(fmt.Sprintf("demote-%s", id), id, vaultcrux.RoleOwner, vaultcrux.RoleAdmin, t0))
							return err
						})
					})
				}
				wg.Wait()
				switch {
				case errs[0] == nil && errors.Is(errs[1], errLast):
					survivor = added
				case errors.Is(errs[0], errLast) && errs[1] == nil:
				default:
					t.Fatalf("round %d: demotions returned %v, %v; want one nil and one last-owner error", round, errs[0], errs[1])
				}
			}
			var active int
			tenTx(t, st, acme, func(tx store.TenantTx) (err error) {
				active, err = tx.LockActiveOwnerSeats()
				return err
			})
			if active != 1 {
				t.Errorf("active owner seats = %d, want 1", active)
			}
		}},
		{"CrossTenant", func(t *testing.T) {
			st := s.fresh(t)
			want := seat(acme, "acme-seat", "a@example.com", vaultcrux.RoleOwner)
			createSeats(t, st, want)
			b := st.ForTenant(bravo)
			calls := map[string]func(tx store.TenantTx) error{
				"GetSeat": func(tx store.TenantTx) error {
					_, err := tx.GetSeat("acme-seat")
					return err
				},
				"ChangeSeatRole": func(tx store.TenantTx) error {
					_, err := tx.ChangeSeatRole(roleChange("c1", "acme-seat", vaultcrux.RoleOwner, vaultcrux.RoleViewer, t0))
					return err
				},
				"RevokeSeat": func(tx store.TenantTx) error {
					_, err := tx.RevokeSeat("acme-seat", t0)
					return err
				},
				"CreateAPIKey": func(tx store.TenantTx) error { return tx.CreateAPIKey(seatKey(bravo, "kb", "acme-seat")) },
			}
			for name, call := range calls {
				checkKind(t, "bravo "+name+"(acme's seat)", b.Tx(t.Context(), call), vaultcrux.NotFound, acme)
			}
			var list []*vaultcrux.Seat
			var history []*vaultcrux.SeatRoleChange
			var count, owners int
			tenTx(t, st, bravo, func(tx store.TenantTx) (err error) {
				if list, err = tx.ListSeats("", 100); err != nil {
					return err
				}
				if history, err = tx.SeatRoleHistory("acme-seat"); err != nil {
					return err
				}
				if count, err = tx.CountSeats(); err != nil {
					return err
				}
				owners, err = tx.LockActiveOwnerSeats()
				return err
			})
			if len(list) != 0 || len(history) != 0 || count != 0 || owners != 0 {
				t.Errorf("bravo sees %d seats, %d role changes, count %d, %d owners; want none", len(list), len(history), count, owners)
			}
			if diff := cmp.Diff(want, getSeat(t, st, acme, "acme-seat")); diff != "" {
				t.Errorf("acme's seat after bravo's attempts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]*vaultcrux.SeatRoleChange{seatCreated(want)}, seatHistory(t, st, acme, "acme-seat")); diff != "" {
				t.Errorf("acme's seat history after bravo's attempts (-want +got):\n%s", diff)
			}
		}},
		{"KeySeatID", func(t *testing.T) {
			st := s.fresh(t)
			createSeats(t, st, seat(acme, "s1", "a@example.com", vaultcrux.RoleMember))
			withSeat, tenantKey := seatKey(acme, "k1", "s1"), apiKey(acme, "k2", vaultcrux.RoleOwner)
			createKeys(t, st, withSeat, tenantKey)
			for _, want := range []*vaultcrux.APIKey{withSeat, tenantKey} {
				if diff := cmp.Diff(want, getKey(t, st, acme, want.ID)); diff != "" {
					t.Errorf("GetAPIKey(%s) (-want +got):\n%s", want.ID, diff)
				}
				var got *vaultcrux.APIKey
				sysTx(t, st, func(tx store.SystemTx) (err error) {
					got, err = tx.LookupAPIKey(want.ID)
					return err
				})
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("LookupAPIKey(%s) (-want +got):\n%s", want.ID, diff)
				}
			}
			var list []*vaultcrux.APIKey
			tenTx(t, st, acme, func(tx store.TenantTx) (err error) {
				list, err = tx.ListAPIKeys("", 10)
				return err
			})
			if diff := cmp.Diff([]*vaultcrux.APIKey{withSeat, tenantKey}, list); diff != "" {
				t.Errorf("ListAPIKeys (-want +got):\n%s", diff)
			}
			err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				return tx.CreateAPIKey(seatKey(acme, "k3", "nope"))
			})
			checkKind(t, "CreateAPIKey(missing seat)", err, vaultcrux.NotFound)
		}},
	}
}

func invite(tenant, id, token string, expires time.Time) *vaultcrux.Invite {
	return &vaultcrux.Invite{
		ID:        id,
		Tenant:    vaultcrux.TenantID(tenant),
		Email:     id + "@example.com",
		Role:      vaultcrux.RoleMember,
		TokenHash: []byte("hash of " + token),
		CreatedBy: "seat:owner",
		CreatedAt: t0,
		ExpiresAt: expires,
	}
}

func createInvites(t *testing.T, st store.Store, invites ...*vaultcrux.Invite) {
	t.Helper()
	for _, inv := range invites {
		tenTx(t, st, string(inv.Tenant), func(tx store.TenantTx) error { return tx.CreateInvite(inv) })
	}
}

// accept accepts the invite of token as the caller does: in the same
// transaction it creates the seat from what the invite says.
func accept(t *testing.T, st store.Store, tenant, token, seatID string, now time.Time) (*vaultcrux.Invite, error) {
	var inv *vaultcrux.Invite
	err := st.ForTenant(vaultcrux.TenantID(tenant)).Tx(t.Context(), func(tx store.TenantTx) (err error) {
		if inv, err = tx.AcceptInvite([]byte("hash of "+token), seatID, now); err != nil {
			return err
		}
		s := &vaultcrux.Seat{ID: seatID, Tenant: inv.Tenant, Email: inv.Email, Role: inv.Role, CreatedAt: now}
		return tx.CreateSeat(s, seatCreated(s))
	})
	return inv, err
}

func (s *suite) inviteTests() []test {
	week := t0.Add(7 * 24 * time.Hour)
	return []test{
		{"CreateAccept", func(t *testing.T) {
			st := s.fresh(t)
			createInvites(t, st, invite(acme, "i1", "tok1", week))
			now := t0.Add(time.Hour)
			got, err := accept(t, st, acme, "tok1", "s1", now)
			if err != nil {
				t.Fatalf("AcceptInvite: %v", err)
			}
			want := invite(acme, "i1", "tok1", week)
			want.AcceptedAt, want.SeatID = ptr(now), "s1"
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("AcceptInvite (-want +got):\n%s", diff)
			}
			if got := getSeat(t, st, acme, "s1"); got.Email != want.Email || got.Role != want.Role {
				t.Errorf("seat of the invite = %s %s, want %s %s", got.Email, got.Role, want.Email, want.Role)
			}
			_, err = accept(t, st, acme, "tok1", "s2", now)
			checkKind(t, "AcceptInvite(accepted already)", err, vaultcrux.NotFound)
			_, err = accept(t, st, acme, "unknown", "s2", now)
			checkKind(t, "AcceptInvite(unknown token)", err, vaultcrux.NotFound)
		}},
		{"Find", func(t *testing.T) {
			st := s.fresh(t)
			open, expired := invite(acme, "i1", "tok1", week), invite(acme, "i2", "tok2", t0)
			createInvites(t, st, open, expired, invite(acme, "i3", "tok3", week))
			if _, err := accept(t, st, acme, "tok3", "s3", t0); err != nil {
				t.Fatal(err)
			}
			accepted := invite(acme, "i3", "tok3", week)
			accepted.AcceptedAt, accepted.SeatID = ptr(t0), "s3"
			find := func(tenant, token string) (*vaultcrux.Invite, error) {
				var inv *vaultcrux.Invite
				err := st.ForTenant(vaultcrux.TenantID(tenant)).Tx(t.Context(), func(tx store.TenantTx) (err error) {
					if token == "" {
						inv, err = tx.FindInvite(nil)
					} else {
						inv, err = tx.FindInvite([]byte("hash of " + token))
					}
					return err
				})
				return inv, err
			}
			for token, want := range map[string]*vaultcrux.Invite{"tok1": open, "tok2": expired, "tok3": accepted} {
				got, err := find(acme, token)
				if err != nil {
					t.Fatalf("FindInvite(%s): %v", token, err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("FindInvite(%s) (-want +got):\n%s", token, diff)
				}
			}
			for _, c := range []struct{ name, tenant, token string }{
				{"unknown", acme, "nope"}, {"empty", acme, ""}, {"other tenant's", bravo, "tok1"},
			} {
				_, err := find(c.tenant, c.token)
				checkKind(t, "FindInvite("+c.name+")", err, vaultcrux.NotFound, acme)
			}
		}},
		{"Expired", func(t *testing.T) {
			st := s.fresh(t)
			expires := t0.Add(time.Hour)
			createInvites(t, st, invite(acme, "i1", "tok1", expires))
			_, err := accept(t, st, acme, "tok1", "s1", expires)
			checkKind(t, "AcceptInvite(at expiry)", err, vaultcrux.Invalid)
			if got, want := vaultcrux.ErrorMessage(err), "invite expired"; got != want {
				t.Errorf("AcceptInvite(at expiry) message = %q, want %q", got, want)
			}
			if _, err := accept(t, st, acme, "tok1", "s1", expires.Add(-time.Millisecond)); err != nil {
				t.Errorf("AcceptInvite just before expiry: %v", err)
			}
		}},
		{"Duplicate", func(t *testing.T) {
			st := s.fresh(t)
			createInvites(t, st, invite(acme, "i1", "tok1", week))
			for _, dup := range []*vaultcrux.Invite{
				invite(acme, "i1", "tok2", week),
				invite(acme, "i2", "tok1", week),
				invite(bravo, "i3", "tok1", week), // a token names one invite in any tenant
			} {
				err := st.ForTenant(dup.Tenant).Tx(t.Context(), func(tx store.TenantTx) error { return tx.CreateInvite(dup) })
				checkKind(t, fmt.Sprintf("CreateInvite(%s in %s)", dup.ID, dup.Tenant), err, vaultcrux.Conflict, acme)
			}
			bad := invite(acme, "i4", "tok4", week)
			bad.Role = "root"
			err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error { return tx.CreateInvite(bad) })
			checkKind(t, "CreateInvite(role root)", err, vaultcrux.Invalid)
		}},
		{"AcceptWithoutSeat", func(t *testing.T) {
			// The seat an invite is accepted as must exist when the
			// transaction commits.
			st := s.fresh(t)
			createInvites(t, st, invite(acme, "i1", "tok1", week))
			err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.AcceptInvite([]byte("hash of tok1"), "s1", t0)
				return err
			})
			if err == nil {
				t.Fatal("accepting as a seat that was never created committed")
			}
			if _, err := accept(t, st, acme, "tok1", "s1", t0); err != nil {
				t.Errorf("AcceptInvite after the failed accept: %v", err)
			}
		}},
		{"CrossTenant", func(t *testing.T) {
			st := s.fresh(t)
			createInvites(t, st, invite(acme, "i1", "tok1", week))
			_, err := accept(t, st, bravo, "tok1", "s1", t0)
			checkKind(t, "bravo AcceptInvite(acme's token)", err, vaultcrux.NotFound, acme)
			expired := invite(acme, "i2", "tok2", t0)
			createInvites(t, st, expired)
			_, err = accept(t, st, bravo, "tok2", "s1", t0.Add(time.Hour))
			checkKind(t, "bravo AcceptInvite(acme's expired token)", err, vaultcrux.NotFound, acme)
			if got, err := accept(t, st, acme, "tok1", "s1", t0); err != nil || got.SeatID != "s1" {
				t.Errorf("acme AcceptInvite after bravo's attempt = %v, %v; want seat s1", got, err)
			}
		}},
		{"ConcurrentAccepts", func(t *testing.T) {
			st := s.fresh(t)
			createInvites(t, st, invite(acme, "i1", "tok1", week))
			const n = 8
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { _, errs[i] = accept(t, st, acme, "tok1", fmt.Sprintf("s%d", i), t0) })
			}
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("accepts %d and %d both won", winner, i)
				case err == nil:
					winner = i
				default:
					checkKind(t, fmt.Sprintf("losing accept %d", i), err, vaultcrux.NotFound)
				}
			}
			if winner < 0 {
				t.Fatal("no accept won")
			}
			if got := countSeats(t, st, acme); got != 1 {
				t.Errorf("CountSeats after concurrent accepts = %d, want 1", got)
			}
		}},
	}
}

// session returns a session opened at t0 that expires after 12 hours.
func session(tenant, id, keyID, seatID string) *vaultcrux.Session {
	return &vaultcrux.Session{
		ID:          id,
		Tenant:      vaultcrux.TenantID(tenant),
		KeyID:       keyID,
		SeatID:      seatID,
		Role:        vaultcrux.RoleMember,
		CreatedAt:   t0,
		ExpiresAt:   t0.Add(12 * time.Hour),
		IdleTimeout: 30 * time.Minute,
		LastSeenAt:  t0,
		IP:          "192.0.2.1",
		UserAgent:   "test agent",
	}
}

func createSessions(t *testing.T, st store.Store, sessions ...*vaultcrux.Session) {
	t.Helper()
	for _, s := range sessions {
		tenTx(t, st, string(s.Tenant), func(tx store.TenantTx) error { return tx.CreateSession(s) })
	}
}

func getSession(t *testing.T, st store.Store, tenant, id string) *vaultcrux.Session {
	t.Helper()
	var s *vaultcrux.Session
	tenTx(t, st, tenant, func(tx store.TenantTx) (err error) {
		s, err = tx.GetSession(id)
		return err
	})
	return s
}

func listActiveSessions(t *testing.T, st store.Store, tenant string, now time.Time, after string, limit int) []*vaultcrux.Session {
	t.Helper()
	var got []*vaultcrux.Session
	tenTx(t, st, tenant, func(tx store.TenantTx) (err error) {
		got, err = tx.ListActiveSessions(now, after, limit)
		return err
	})
	return got
}

// sessionKeys returns a store with seat s1 in acme, its key k1, and the
// tenant keys k2 (acme) and kb (bravo).
func (s *suite) sessionKeys(t *testing.T) store.Store {
	t.Helper()
	st := s.fresh(t)
	createSeats(t, st, seat(acme, "s1", "a@example.com", vaultcrux.RoleMember))
	createKeys(t, st, seatKey(acme, "k1", "s1"), apiKey(acme, "k2", vaultcrux.RoleAdmin), apiKey(bravo, "kb", vaultcrux.RoleOwner))
	return st
}

func (s *suite) sessionTests() []test {
	return []test{
		{"CreateGet", func(t *testing.T) {
			st := s.sessionKeys(t)
			withSeat := session(acme, "sess1", "k1", "s1")
			withKey := session(acme, "sess2", "k2", "")
			withKey.Role, withKey.RevokedAt, withKey.IdleTimeout = vaultcrux.RoleAdmin, ptr(t0.Add(time.Minute)), time.Hour
			createSessions(t, st, withSeat, withKey)
			for _, want := range []*vaultcrux.Session{withSeat, withKey} {
				if diff := cmp.Diff(want, getSession(t, st, acme, want.ID)); diff != "" {
					t.Errorf("GetSession(%s) (-want +got):\n%s", want.ID, diff)
				}
			}
			tests := []struct {
				name string
				s    *vaultcrux.Session
				want vaultcrux.Kind
			}{
				{"duplicate id", session(acme, "sess1", "k2", ""), vaultcrux.Conflict},
				{"missing key", session(acme, "sess3", "nope", ""), vaultcrux.NotFound},
				{"missing seat", session(acme, "sess3", "k1", "nope"), vaultcrux.NotFound},
				{"other tenant's key", session(acme, "sess3", "kb", ""), vaultcrux.NotFound},
				{"other tenant's record", session(bravo, "sess3", "kb", ""), vaultcrux.Internal},
				{"role root", func() *vaultcrux.Session { s := session(acme, "sess3", "k1", ""); s.Role = "root"; return s }(), vaultcrux.Invalid},
			}
			for _, tt := range tests {
				err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error { return tx.CreateSession(tt.s) })
				checkKind(t, "CreateSession("+tt.name+")", err, tt.want)
			}
			err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.GetSession("nope")
				return err
			})
			checkKind(t, "GetSession(missing)", err, vaultcrux.NotFound)
		}},
		{"Touch", func(t *testing.T) {
			st := s.sessionKeys(t)
			createSessions(t, st, session(acme, "sess1", "k1", "s1"))
			steps := []struct {
				name string
				at   time.Time
				want time.Time
			}{
				{"later", t0.Add(time.Minute), t0.Add(time.Minute)},
				{"earlier ignored", t0.Add(time.Second), t0.Add(time.Minute)},
				{"same", t0.Add(time.Minute), t0.Add(time.Minute)},
				{"later again", t0.Add(time.Hour), t0.Add(time.Hour)},
			}
			for _, step := range steps {
				tenTx(t, st, acme, func(tx store.TenantTx) error { return tx.TouchSession("sess1", step.at) })
				if got := getSession(t, st, acme, "sess1").LastSeenAt; got != step.want {
					t.Errorf("%s: LastSeenAt = %v, want %v", step.name, got, step.want)
				}
			}
			err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error { return tx.TouchSession("nope", t0) })
			checkKind(t, "TouchSession(missing)", err, vaultcrux.NotFound)
		}},
		{"Revoke", func(t *testing.T) {
			st := s.sessionKeys(t)
			createSessions(t, st, session(acme, "sess1", "k1", "s1"), session(acme, "sess2", "k1", "s1"))
			want := session(acme, "sess1", "k1", "s1")
			want.RevokedAt = ptr(t0.Add(time.Hour))
			for i, at := range []time.Time{t0.Add(time.Hour), t0.Add(2 * time.Hour)} {
				var got *vaultcrux.Session
				tenTx(t, st, acme, func(tx store.TenantTx) (err error) {
					got, err = tx.RevokeSession("sess1", at)
					return err
				})
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("RevokeSession #%d (-want +got):\n%s", i+1, diff)
				}
			}
			if got := getSession(t, st, acme, "sess2").RevokedAt; got != nil {
				t.Errorf("sess2 revoked at %v along with sess1", got)
			}
			err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.RevokeSession("nope", t0)
				return err
			})
			checkKind(t, "RevokeSession(missing)", err, vaultcrux.NotFound)
		}},
		{"RevokeKeySessions", func(t *testing.T) {
			st := s.sessionKeys(t)
			early := session(acme, "sess0", "k1", "s1")
			early.RevokedAt = ptr(t0)
			createSessions(t, st, early, session(acme, "sess1", "k1", "s1"), session(acme, "sess2", "k1", ""),
				session(acme, "sess3", "k2", ""), session(bravo, "sess4", "kb", ""))
			at := t0.Add(time.Hour)
			revoke := func(tenant, key string) int {
				var n int
				tenTx(t, st, tenant, func(tx store.TenantTx) (err error) {
					n, err = tx.RevokeKeySessions(key, at)
					return err
				})
				return n
			}
			if got := revoke(acme, "k1"); got != 2 {
				t.Errorf("RevokeKeySessions(k1) = %d, want 2", got)
			}
			if got := revoke(acme, "k1"); got != 0 {
				t.Errorf("RevokeKeySessions(k1) again = %d, want 0", got)
			}
			if got := revoke(bravo, "k2"); got != 0 {
				t.Errorf("bravo RevokeKeySessions(acme's k2) = %d, want 0", got)
			}
			for _, w := range []struct {
				tenant, id string
				want       *time.Time
			}{
				{acme, "sess0", ptr(t0)},
				{acme, "sess1", ptr(at)},
				{acme, "sess2", ptr(at)},
				{acme, "sess3", nil},
				{bravo, "sess4", nil},
			} {
				if diff := cmp.Diff(w.want, getSession(t, st, w.tenant, w.id).RevokedAt); diff != "" {
					t.Errorf("%s RevokedAt (-want +got):\n%s", w.id, diff)
				}
			}
		}},
		{"ListActive", func(t *testing.T) {
			st := s.sessionKeys(t)
			now := t0.Add(time.Hour)
			revoked := session(acme, "a2r", "k1", "s1")
			revoked.RevokedAt = ptr(t0)
			expired := session(acme, "a0e", "k1", "s1")
			expired.ExpiresAt = now // expiry is exclusive: at now it is over
			idle := session(acme, "a5", "k1", "s1")
			idle.LastSeenAt = t0.Add(-10 * time.Hour) // idle expiry is the caller's to judge
			var active []*vaultcrux.Session
			for _, id := range []string{"a1", "a3", "a4"} {
				active = append(active, session(acme, id, "k2", ""))
			}
			active = append(active, idle)
			createSessions(t, st, revoked, expired, active[3], active[1], active[0], active[2], session(bravo, "a0", "kb", ""))
			pages := []struct {
				after string
				limit int
				want  []*vaultcrux.Session
			}{
				{"", 10, active},
				{"", 2, active[:2]},
				{"a3", 2, active[2:]},
				{"a2r", 1, active[1:2]}, // a cursor need not be active
				{"a5", 2, nil},
			}
			for _, p := range pages {
				if diff := cmp.Diff(p.want, listActiveSessions(t, st, acme, now, p.after, p.limit)); diff != "" {
					t.Errorf("ListActiveSessions(%q, %d) (-want +got):\n%s", p.after, p.limit, diff)
				}
			}
			if got := listActiveSessions(t, st, acme, expired.ExpiresAt.Add(-time.Millisecond), "", 10); len(got) != 5 {
				t.Errorf("ListActiveSessions just before a0e's expiry = %d sessions, want 5", len(got))
			}
			err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.ListActiveSessions(now, "", 0)
				return err
			})
			checkKind(t, "ListActiveSessions(limit 0)", err, vaultcrux.Invalid)
		}},
		{"CrossTenant", func(t *testing.T) {
			st := s.sessionKeys(t)
			want := session(acme, "acme-sess", "k1", "s1")
			createSessions(t, st, want)
			calls := map[string]func(tx store.TenantTx) error{
				"GetSession": func(tx store.TenantTx) error {
					_, err := tx.GetSession("acme-sess")
					return err
				},
				"TouchSession": func(tx store.TenantTx) error { return tx.TouchSession("acme-sess", t0.Add(time.Hour)) },
				"RevokeSession": func(tx store.TenantTx) error {
					_, err := tx.RevokeSession("acme-sess", t0)
					return err
				},
			}
			for name, call := range calls {
				checkKind(t, "bravo "+name+"(acme's session)", st.ForTenant(bravo).Tx(t.Context(), call), vaultcrux.NotFound, acme)
			}
			if got := listActiveSessions(t, st, bravo, t0, "", 10); len(got) != 0 {
				t.Errorf("bravo ListActiveSessions = %d sessions, want 0", len(got))
			}
			if diff := cmp.Diff(want, getSession(t, st, acme, "acme-sess")); diff != "" {
				t.Errorf("acme's session after bravo's attempts (-want +got):\n%s", diff)
			}
		}},
	}
}

// sessionEvent returns event i; event ids sort as ULIDs do, in time order.
func sessionEvent(tenant string, i int, kind string) *vaultcrux.SessionEvent {
	e := &vaultcrux.SessionEvent{
		ID:        fmt.Sprintf("01JEVENT%02d", i),
		Tenant:    vaultcrux.TenantID(tenant),
		SessionID: fmt.Sprintf("sess%d", i),
		Kind:      kind,
		At:        t0.Add(time.Duration(i) * time.Minute),
		IP:        "192.0.2.1",
		UserAgent: "test agent",
		Detail:    "detail " + kind,
	}
	if kind == "failed" {
		e.SessionID = ""
	}
	return e
}

func addSessionEvents(t *testing.T, st store.Store, events ...*vaultcrux.SessionEvent) {
	t.Helper()
	for _, e := range events {
		tenTx(t, st, string(e.Tenant), func(tx store.TenantTx) error { return tx.AddSessionEvent(e) })
	}
}

func listSessionEvents(t *testing.T, st store.Store, tenant, before string, limit int) []*vaultcrux.SessionEvent {
	t.Helper()
	var got []*vaultcrux.SessionEvent
	tenTx(t, st, tenant, func(tx store.TenantTx) (err error) {
		got, err = tx.ListSessionEvents(before, limit)
		return err
	})
	return got
}

func (s *suite) sessionEventTests() []test {
	return []test{
		{"AddList", func(t *testing.T) {
			st := s.fresh(t)
			kinds := []string{"connect", "failed", "logout", "expired", "revoked"}
			var newestFirst []*vaultcrux.SessionEvent
			for i := len(kinds) - 1; i >= 0; i-- {
				newestFirst = append(newestFirst, sessionEvent(acme, i, kinds[i]))
			}
			// Added out of order: the list is ordered by id.
			addSessionEvents(t, st, newestFirst[2], newestFirst[0], newestFirst[4], newestFirst[1], newestFirst[3])
			addSessionEvents(t, st, sessionEvent(bravo, 7, "connect"))
			last := newestFirst[len(newestFirst)-1].ID
			pages := []struct {
				before string
				limit  int
				want   []*vaultcrux.SessionEvent
			}{
				{"", 10, newestFirst},
				{"", 2, newestFirst[:2]},
				{newestFirst[1].ID, 2, newestFirst[2:4]},
				{newestFirst[3].ID, 2, newestFirst[4:]},
				{last, 2, nil},
				{"01JEVENT02x", 1, newestFirst[2:3]}, // a cursor need not exist
				{"01JEVENT99", 2, newestFirst[:2]},
			}
			for _, p := range pages {
				if diff := cmp.Diff(p.want, listSessionEvents(t, st, acme, p.before, p.limit)); diff != "" {
					t.Errorf("ListSessionEvents(%q, %d) (-want +got):\n%s", p.before, p.limit, diff)
				}
			}
		}},
		{"AddRejected", func(t *testing.T) {
			st := s.fresh(t)
			addSessionEvents(t, st, sessionEvent(acme, 1, "connect"))
			// Event ids are per tenant.
			addSessionEvents(t, st, sessionEvent(bravo, 1, "connect"))
			tests := []struct {
				name string
				e    *vaultcrux.SessionEvent
				want vaultcrux.Kind
			}{
				{"duplicate id", sessionEvent(acme, 1, "logout"), vaultcrux.Conflict},
				{"kind login", sessionEvent(acme, 2, "login"), vaultcrux.Invalid},
				{"other tenant's record", sessionEvent(bravo, 2, "connect"), vaultcrux.Internal},
			}
			for _, tt := range tests {
				err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error { return tx.AddSessionEvent(tt.e) })
				checkKind(t, "AddSessionEvent("+tt.name+")", err, tt.want)
			}
			err := st.ForTenant(acme).Tx(t.Context(), func(tx store.TenantTx) error {
				_, err := tx.ListSessionEvents("", 0)
				return err
			})
			checkKind(t, "ListSessionEvents(limit 0)", err, vaultcrux.Invalid)
			if diff := cmp.Diff([]*vaultcrux.SessionEvent{sessionEvent(acme, 1, "connect")}, listSessionEvents(t, st, acme, "", 10)); diff != "" {
				t.Errorf("acme's events (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]*vaultcrux.SessionEvent{sessionEvent(bravo, 1, "connect")}, listSessionEvents(t, st, bravo, "", 10)); diff != "" {
				t.Errorf("bravo's events (-want +got):\n%s", diff)
			}
		}},
	}
}

// seatTimeTest checks the times of seats, invites, sessions and events
// as timeTests does for keys.
func (s *suite) seatTimeTest(t *testing.T) {
	st := s.fresh(t)
	zone := time.FixedZone("UTC+5", 5*3600)
	in := time.Date(2025, 1, 2, 3, 4, 5, 123_456_789, zone)
	want := time.Date(2025, 1, 1, 22, 4, 5, 123_000_000, time.UTC)

	s1 := seat(acme, "s1", "a@example.com", vaultcrux.RoleMember)
	s1.CreatedAt, s1.RevokedAt = in, &in
	s2 := seat(acme, "s2", "b@example.com", vaultcrux.RoleMember)
	inv := invite(acme, "i1", "tok1", in.Add(time.Hour))
	inv.CreatedAt = in
	sess := session(acme, "sess1", "k1", "s1")
	sess.CreatedAt, sess.ExpiresAt, sess.LastSeenAt, sess.RevokedAt = in, in, in, &in
	sess.IdleTimeout = 90*time.Second + 999*time.Microsecond
	ev := sessionEvent(acme, 1, "connect")
	ev.At = in
	var accepted *vaultcrux.Invite
	tenTx(t, st, acme, func(tx store.TenantTx) (err error) {
		err = errors.Join(
			tx.CreateSeat(s1, &vaultcrux.SeatRoleChange{ID: "c1", SeatID: "s1", NewRole: s1.Role, At: in}),
			tx.CreateSeat(s2, seatCreated(s2)),
			tx.CreateAPIKey(seatKey(acme, "k1", "s1")),
			tx.CreateSession(sess),
			tx.CreateInvite(inv),
			tx.AddSessionEvent(ev))
		if err != nil {
			return err
		}
		accepted, err = tx.AcceptInvite(inv.TokenHash, "s2", in)
		return err
	})
	seatGot := getSeat(t, st, acme, "s1")
	history := seatHistory(t, st, acme, "s1")
	sessGot := getSession(t, st, acme, "sess1")
	events := listSessionEvents(t, st, acme, "", 1)
	got := map[string]time.Time{
		"seat.CreatedAt":     seatGot.CreatedAt,
		"seat.RevokedAt":     *seatGot.RevokedAt,
		"change.At":          history[0].At,
		"invite.CreatedAt":   accepted.CreatedAt,
		"invite.ExpiresAt":   accepted.ExpiresAt.Add(-time.Hour),
		"invite.AcceptedAt":  *accepted.AcceptedAt,
		"session.CreatedAt":  sessGot.CreatedAt,
		"session.ExpiresAt":  sessGot.ExpiresAt,
		"session.LastSeenAt": sessGot.LastSeenAt,
		"session.RevokedAt":  *sessGot.RevokedAt,
		"event.At":           events[0].At,
	}
	for name, g := range got {
		// == rather than Equal: the location must be UTC too.
		if g != want {
			t.Errorf("%s = %v, want %v", name, g, want)
		}
	}
	if got, want := sessGot.IdleTimeout, 90*time.Second; got != want {
		t.Errorf("session.IdleTimeout = %v, want %v", got, want)
	}
}
