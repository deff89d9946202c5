package controlplane

import (
	"strings"
	"testing"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"

	"sessiongate.dev/sessiongate/api/v1alpha1"
)

func TestNotesAreCutAtACharacterToWhatTheAPIServerTakes(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"ascii", strings.Repeat("a", 3000)},
		{"two-byte", strings.Repeat("é", 1000)},
		{"three-byte", "x" + strings.Repeat("€", 500)},
		{"four-byte", "xy" + strings.Repeat("🔑", 400)},
		{"invalid bytes before the cut", "\xff\xfe" + strings.Repeat("é", 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := truncateNote(tc.in)
			if len(out) > maxNote || len(out) < maxNote-len("…")-3 {
				t.Errorf("cut to %d bytes, want %d-%d", len(out), maxNote-len("…")-3, maxNote)
			}
			if !strings.HasSuffix(out, "…") || !strings.HasPrefix(tc.in, strings.TrimSuffix(out, "…")) {
				t.Errorf("the cut is not a prefix marked with …: %q", out[len(out)-12:])
			}
			if utf8.ValidString(tc.in[2:]) && !utf8.ValidString(out[2:]) {
				t.Errorf("the cut splits a character: %q", out[len(out)-12:])
			}
		})
	}
	if short := strings.Repeat("é", maxNote/2); truncateNote(short) != short {
		t.Errorf("a note of exactly %d bytes was cut", maxNote)
	}
}

// sent is what a pass recorder sent to rec: "type reason note" lines.
func sent(rec *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestAPassTellsItsStepsInOneEventNamedAfterTheStepThatMatters(t *testing.T) {
	s, other := &v1alpha1.Session{}, &v1alpha1.Session{}
	normal := corev1.EventTypeNormal
	type ev struct {
		regarding         *v1alpha1.Session
		typ, reason, note string
	}
	for _, tc := range []struct {
		name   string
		events []ev
		drop   bool
		want   []string
	}{
		{"activation", []ev{{s, normal, "Granted", "granted"}, {s, normal, "AutoApproved", "auto"}, {s, normal, v1alpha1.ReasonMinted, "minted"}, {s, normal, v1alpha1.ReasonActive, "active"}}, false,
			[]string{"Normal Active granted | auto | minted | active"}},
		{"a renewal with a refresh", []ev{{s, normal, v1alpha1.ReasonRenewed, "renewed"}, {s, normal, v1alpha1.ReasonMinted, "minted"}}, false,
			[]string{"Normal Renewed renewed | minted"}},
		{"an end and its revocation", []ev{{s, normal, v1alpha1.ReasonExpired, "ran out"}, {s, normal, v1alpha1.ReasonRevoked, "revoked"}}, false,
			[]string{"Normal Expired ran out | revoked"}},
		{"a refresh alone", []ev{{s, normal, v1alpha1.ReasonMinted, "minted"}}, false, []string{"Normal Minted minted"}},
		{"a Warning goes after what was held", []ev{{s, normal, "Granted", "granted"}, {s, corev1.EventTypeWarning, "TargetUnreachable", "down"}, {s, normal, v1alpha1.ReasonMinted, "minted"}}, false,
			[]string{"Normal Granted granted", "Warning TargetUnreachable down", "Normal Minted minted"}},
		{"another object's Event goes at once", []ev{{s, normal, "Granted", "granted"}, {other, normal, "Deleting", "gone"}}, false,
			[]string{"Normal Granted granted", "Normal Deleting gone"}},
		{"a stale pass tells only what it did on the target", []ev{{s, normal, "Granted", "granted"}, {s, normal, v1alpha1.ReasonMinted, "minted"}, {s, normal, v1alpha1.ReasonActive, "active"}}, true,
			[]string{"Normal Minted minted"}},
		{"a stale end still tells its revocation", []ev{{s, normal, v1alpha1.ReasonTerminated, "terminated"}, {s, normal, v1alpha1.ReasonRevoked, "revoked"}}, true,
			[]string{"Normal Revoked revoked"}},
		{"notes too long for one Event go one by one", []ev{{s, normal, "Approved", strings.Repeat("a", 600)}, {s, normal, v1alpha1.ReasonActive, strings.Repeat("b", 600)}}, false,
			[]string{"Normal Approved " + strings.Repeat("a", 600), "Normal Active " + strings.Repeat("b", 600)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := events.NewFakeRecorder(10)
			p := &passEvents{EventRecorder: rec, session: s}
			for _, e := range tc.events {
				p.Eventf(e.regarding, nil, e.typ, e.reason, "Act", "%s", e.note)
			}
			if tc.drop {
				p.drop()
			}
			p.flush()
			p.flush()
			if got := sent(rec); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("sent:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
