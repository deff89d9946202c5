package dev

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/notify"
)

// NotificationsSecret holds the sandbox receiver's URL and signing key; the
// sandbox's policies name it in their notification sinks.
const NotificationsSecret = "sandbox-notifications"

// NotificationsLog is where the sandbox receiver appends each verified
// event as a JSON line, in the sandbox directory.
const NotificationsLog = "notifications.log"

// startReceiver serves a Webhook receiver that verifies each event, prints
// it, and appends it to NotificationsLog; it stores the receiver's URL and
// a fresh signing key in NotificationsSecret and gives the sandbox's sinks
// the sandbox CA, which only it can know.
func startReceiver(ctx context.Context, c client.Client, dir, certFile, keyFile string, caPEM []byte, out io.Writer) (func(), error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	key = []byte(hex.EncodeToString(key))
	log, err := os.OpenFile(filepath.Join(dir, NotificationsLog), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	rc := &notify.Receiver{Key: key, Handle: func(ev notify.Event) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, "sessiongate dev: notification %s: session %s (%s on %s): %s\n", ev.Type, ev.Session, ev.AccessLevel, ev.Cluster, ev.Message)
		b, _ := json.Marshal(ev)
		_, _ = log.Write(append(b, '\n'))
	}}
	addr, stopServer, err := serveTLS(rc, certFile, keyFile)
	if err != nil {
		_ = log.Close()
		return nil, err
	}
	stop := func() { stopServer(); _ = log.Close() }

	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: NotificationsSecret},
		Data:       map[string][]byte{"url": []byte("https://" + addr + "/events"), "key": key},
	}
	if err := c.Create(ctx, sec); err != nil {
		stop()
		return nil, fmt.Errorf("storing the notification receiver's Secret: %w", err)
	}
	policies := &v1alpha1.AccessPolicyList{}
	if err := c.List(ctx, policies, client.InNamespace(Namespace)); err != nil {
		stop()
		return nil, err
	}
	for i := range policies.Items {
		p := &policies.Items[i]
		if p.Spec.Notifications == nil {
			continue
		}
		for j := range p.Spec.Notifications.Sinks {
			if s := &p.Spec.Notifications.Sinks[j]; s.URLSecretRef.Name == NotificationsSecret {
				s.CABundle = caPEM
			}
		}
		if err := c.Update(ctx, p); err != nil {
			stop()
			return nil, fmt.Errorf("giving AccessPolicy %s the sandbox CA: %w", p.Name, err)
		}
	}
	return stop, nil
}
