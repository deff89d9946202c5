package sgctl

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientauthv1 "k8s.io/client-go/pkg/apis/clientauthentication/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"sessiongate.dev/sessiongate/api/v1alpha1"
	"sessiongate.dev/sessiongate/internal/api"
)

// NewCommand returns sgctl's root command.
func NewCommand() *cobra.Command {
	cfg := &Config{
		Server:       os.Getenv(EnvServer),
		CAFile:       os.Getenv(EnvCA),
		TokenFile:    os.Getenv(EnvTokenFile),
		TokenCommand: os.Getenv(EnvTokenCommand),
	}
	root := &cobra.Command{
		Use:           "sgctl",
		Short:         "Request and use just-in-time Kubernetes access through sessiongate",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&cfg.Server, "server", cfg.Server, "Gateway URL, e.g. https://sessiongate.example.com ($"+EnvServer+").")
	pf.StringVar(&cfg.CAFile, "certificate-authority", cfg.CAFile, "CA file that verifies the gateway ($"+EnvCA+"; default: system roots).")
	pf.StringVar(&cfg.TokenFile, "token-file", cfg.TokenFile, "File holding your OIDC token ($"+EnvTokenFile+"); $"+EnvToken+" wins over it.")
	pf.StringVar(&cfg.TokenCommand, "token-command", cfg.TokenCommand, "Shell command that prints your OIDC token ($"+EnvTokenCommand+").")

	client := func() (*Client, error) { return NewClient(cfg) }
	root.AddCommand(
		requestCommand(client),
		listCommand(client),
		getCommand(client),
		terminateCommand(client),
		approveCommand(client),
		rejectCommand(client),
		approvalsCommand(client),
		policiesCommand(client),
		waitCommand(client),
		renewCommand(client),
		revokeCommand(client),
		recordingsCommand(client),
		replayCommand(client),
		templatesCommand(client),
		shareCommand(client),
		unshareCommand(client),
		kubeconfigCommand(cfg, client),
		debugCommand(client),
		tokenCommand(cfg),
	)
	return root
}

// withClient builds the API client before running fn, so that every command
// reports a bad --server or CA the same way.
func withClient(client func() (*Client, error), fn func(*cobra.Command, *Client, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := client()
		if err != nil {
			return err
		}
		return fn(cmd, c, args)
	}
}

func requestCommand(client func() (*Client, error)) *cobra.Command {
	var (
		req        api.SessionRequest
		access     string
		namespaces []string
		wait       bool
		timeout    time.Duration
		debugReq   v1alpha1.DebugRequest
		vars       []string
	)
	cmd := &cobra.Command{
		Use: "request --cluster C --access view|edit|group:NAME [--namespace N]... --ttl 30m --reason TEXT\n" +
			"  sgctl request --cluster C --template NAME [--namespace N] [--var k=v]... [--scheduling OPTION] --ttl 30m --reason TEXT",
		Short: "Request a session (or, with --template, a debug session) for yourself; prints its name",
		Args:  cobra.NoArgs,
		RunE: withClient(client, func(cmd *cobra.Command, c *Client, _ []string) error {
			switch {
			case debugReq.Template != "":
				if cmd.Flags().Changed("access") {
					return fmt.Errorf("--template and --access do not go together: a debug session's template says what it may touch")
				}
				if len(namespaces) > 1 {
					return fmt.Errorf("a debug session runs in one namespace; --namespace was given %d times", len(namespaces))
				}
				if len(namespaces) == 1 {
					debugReq.Namespace = namespaces[0]
				}
				for _, kv := range vars {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						return fmt.Errorf("--var %q: write it as name=value", kv)
					}
					if debugReq.Variables == nil {
						debugReq.Variables = map[string]string{}
					}
					debugReq.Variables[k] = v
				}
				req.Debug = &debugReq
			case len(vars) > 0 || debugReq.Scheduling != "":
				return fmt.Errorf("--var and --scheduling need --template")
			default:
				if g, ok := strings.CutPrefix(access, "group:"); ok {
					req.AccessLevel = v1alpha1.AccessLevel{Group: g}
				} else {
					req.AccessLevel = v1alpha1.AccessLevel{ClusterRole: access, Namespaces: namespaces}
				}
			}
			s, err := c.Request(cmd.Context(), req)
			if err != nil {
				return err
			}
			// The name goes to stdout for scripts; which policy granted it
			// and what it waits for to stderr.
			by := "AccessPolicy " + s.Spec.Policy
			if s.Spec.Debug != nil {
				by = "DebugSessionTemplate " + s.Spec.Debug.Template
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "session %s: %s under %s%s\n", s.Name, phaseOrPending(s), by, readyNote(s))
			if wait {
				ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
				defer cancel()
				if s, err = waitActive(ctx, c, s.Name, cmd.ErrOrStderr(), s); err != nil {
					return err
				}
			}
			fmt.Fprintln(cmd.OutOrStdout(), s.Name)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&req.Cluster, "cluster", "", "Registered cluster to access.")
	f.StringVar(&access, "access", "view", "ClusterRole to be granted (view, edit, ...) or group:NAME.")
	f.StringSliceVar(&namespaces, "namespace", nil, "Limit the ClusterRole to these namespaces (repeatable); with --template, the debug namespace.")
	f.StringVar(&debugReq.Template, "template", "", "Request a debug session from this DebugSessionTemplate (see sgctl templates).")
	f.StringArrayVar(&vars, "var", nil, "A variable of the debug pod template, as name=value (repeatable).")
	f.StringVar(&debugReq.Scheduling, "scheduling", "", "One of the debug template's scheduling options.")
	f.StringVar(&req.TTL, "ttl", "", "How long the session lasts once active (default: the policy's default).")
	f.StringVar(&req.StartAt, "start", "", "Start later, at this RFC 3339 time, where the policy allows scheduling.")
	f.StringVar(&req.Policy, "policy", "", "AccessPolicy to be judged by (default: the gateway picks one that grants the request; see sgctl policies).")
	f.StringVar(&req.Reason, "reason", "", "Why you need access (an incident or change number); audited.")
	f.BoolVar(&wait, "wait", false, "Show the session's phase as it changes (and what it waits for) and return when it is Active.")
	f.DurationVar(&timeout, "timeout", 10*time.Minute, "How long --wait waits.")
	return cmd
}

func phaseOrPending(s *v1alpha1.Session) v1alpha1.SessionPhase {
	if s.Status.Phase == "" {
		return v1alpha1.PhasePending
	}
	return s.Status.Phase
}

// readyNote is the Ready condition's message for phases where it says what
// the session waits for or why it ended.
func readyNote(s *v1alpha1.Session) string {
	c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
	if c == nil || c.Status == metav1.ConditionTrue || c.Message == "" {
		return ""
	}
	return " (" + c.Message + ")"
}

// waitActive polls until the session is Active, printing each change of
// phase or of what it waits for (an approval counted is one), and each
// approver's decision as it comes. seen, if set, is what was printed already.
func waitActive(ctx context.Context, c *Client, name string, progress io.Writer, seen *v1alpha1.Session) (*v1alpha1.Session, error) {
	var lastPhase v1alpha1.SessionPhase
	var lastNote string
	var decisions int
	if seen != nil {
		lastPhase, lastNote, decisions = phaseOrPending(seen), readyNote(seen), len(seen.Status.Decisions)
	}
	for {
		s, err := c.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, d := range s.Status.Decisions[min(decisions, len(s.Status.Decisions)):] {
			fmt.Fprintf(progress, "session %s: %s by %s%s\n", name, strings.ToLower(string(d.Decision)), d.Approver, quoted(d.Comment))
		}
		decisions = len(s.Status.Decisions)
		phase, note := phaseOrPending(s), readyNote(s)
		if phase != lastPhase || note != lastNote {
			fmt.Fprintf(progress, "session %s: %s%s\n", name, phase, note)
			lastPhase, lastNote = phase, note
		}
		switch phase {
		case v1alpha1.PhaseActive:
			return s, nil
		case v1alpha1.PhaseFailed, v1alpha1.PhaseExpired, v1alpha1.PhaseIdleExpired, v1alpha1.PhaseTerminated, v1alpha1.PhaseRejected, v1alpha1.PhaseApprovalTimeout:
			msg := string(phase)
			if c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady); c != nil {
				msg = c.Message
			}
			return nil, fmt.Errorf("session %s is %s: %s", name, phase, msg)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("session %s is still %s: %w", name, phase, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// quoted is a decision's comment as printed after it, or nothing.
func quoted(comment string) string {
	if comment == "" {
		return ""
	}
	return fmt.Sprintf(": %q", comment)
}

func listCommand(client func() (*Client, error)) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List your sessions",
		Args:  cobra.NoArgs,
		RunE: withClient(client, func(cmd *cobra.Command, c *Client, _ []string) error {
			l, err := c.List(cmd.Context())
			if err != nil {
				return err
			}
			return printSessions(cmd.OutOrStdout(), output, l, l.Items)
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: json or yaml (default: a table).")
	return cmd
}

func getCommand(client func() (*Client, error)) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "get SESSION",
		Short: "Show one of your sessions",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(client, func(cmd *cobra.Command, c *Client, args []string) error {
			s, err := c.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printSessions(cmd.OutOrStdout(), output, s, []v1alpha1.Session{*s})
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Output format: json or yaml (default: a table).")
	return cmd
}

func terminateCommand(client func() (*Client, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "terminate SESSION",
		Short: "End one of your sessions now",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(client, func(cmd *cobra.Command, c *Client, args []string) error {
			if _, err := c.Terminate(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "session %s terminated\n", args[0])
			return nil
		}),
	}
}

func printSessions(w io.Writer, format string, obj any, items []v1alpha1.Session) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(obj, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	case "yaml":
		b, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case "":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tCLUSTER\tACCESS\tPHASE\tEXPIRES-AT\tREASON")
		for _, s := range items {
			expires := "-"
			if s.Status.ExpiresAt != nil {
				expires = s.Status.ExpiresAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Spec.Cluster, sessionAccess(&s), s.Status.Phase, expires, s.Spec.Reason)
		}
		return tw.Flush()
	default:
		return fmt.Errorf("unknown output format %q: use json or yaml", format)
	}
}

// sessionAccess is what a session grants, in a few words.
func sessionAccess(s *v1alpha1.Session) string {
	if d := s.Spec.Debug; d != nil {
		return "debug:" + d.Template
	}
	return accessString(s.Spec.AccessLevel)
}

func accessString(a v1alpha1.AccessLevel) string {
	switch {
	case a.Group != "":
		return "group:" + a.Group
	case len(a.Namespaces) > 0:
		return a.ClusterRole + " in " + strings.Join(a.Namespaces, ",")
	}
	return a.ClusterRole
}

func kubeconfigCommand(cfg *Config, client func() (*Client, error)) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "kubeconfig SESSION",
		Short: "Write a kubeconfig that points kubectl at a session (no token inside)",
		Args:  cobra.ExactArgs(1),
		RunE: withClient(client, func(cmd *cobra.Command, c *Client, args []string) error {
			s, err := c.Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if s.Status.Phase != v1alpha1.PhaseActive || s.Status.Endpoint == "" {
				return fmt.Errorf("session %s is %s, not Active", s.Name, s.Status.Phase)
			}
			kc, err := Kubeconfig(cfg, s)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(kc)
			} else {
				err = os.WriteFile(out, kc, 0o600)
			}
			if err != nil {
				return err
			}
			// The YAML that clientcmd writes has no room for a comment, and
			// kubectl proxy's failure (404 for everything) says nothing.
			_, _ = fmt.Fprintln(cmd.ErrOrStderr(), KubectlProxyHint)
			return nil
		}),
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "File to write (default: standard output).")
	return cmd
}

// KubectlProxyHint is printed (to standard error) with every kubeconfig: a
// session's server URL has a path, which kubectl proxy drops unless told.
const KubectlProxyHint = "Note: this kubeconfig's server URL has a path (/sessiongate/<session>/kas); " +
	"with kubectl proxy, add --append-server-path or every request answers 404."

// Kubeconfig renders a kubeconfig for session s: the server is the session
// endpoint, the CA the gateway's, and the user an exec credential plugin
// (`sgctl token`) so that tokens are fetched at use and never stored.
func Kubeconfig(cfg *Config, s *v1alpha1.Session) ([]byte, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cluster := &clientcmdapi.Cluster{Server: s.Status.Endpoint}
	if cfg.CAFile != "" {
		ca, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the gateway CA: %w", err)
		}
		cluster.CertificateAuthorityData = ca
	}
	var env []clientcmdapi.ExecEnvVar
	if cfg.TokenFile != "" {
		env = append(env, clientcmdapi.ExecEnvVar{Name: EnvTokenFile, Value: cfg.TokenFile})
	}
	if cfg.TokenCommand != "" {
		env = append(env, clientcmdapi.ExecEnvVar{Name: EnvTokenCommand, Value: cfg.TokenCommand})
	}
	name := "sessiongate-" + s.Name
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = cluster
	kc.AuthInfos[name] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{
		APIVersion:      clientauthv1.SchemeGroupVersion.String(),
		Command:         self,
		Args:            []string{"token"},
		Env:             env,
		InteractiveMode: clientcmdapi.NeverExecInteractiveMode,
		InstallHint:     "sgctl is sessiongate's CLI; install it to use this kubeconfig.",
	}}
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: firstNamespace(s)}
	kc.CurrentContext = name
	return clientcmd.Write(*kc)
}

func firstNamespace(s *v1alpha1.Session) string {
	if ns := s.Spec.AccessLevel.Namespaces; len(ns) > 0 {
		return ns[0]
	}
	if d := s.Status.Debug; d != nil {
		return d.Namespace
	}
	return ""
}

func tokenCommand(cfg *Config) *cobra.Command {
	return &cobra.Command{
		Use:   "token",
		Short: "Print your OIDC token as a client.authentication.k8s.io/v1 ExecCredential (for kubectl)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := cfg.Token(cmd.Context())
			if err != nil {
				return err
			}
			cred := clientauthv1.ExecCredential{Status: &clientauthv1.ExecCredentialStatus{Token: tok}}
			cred.APIVersion, cred.Kind = clientauthv1.SchemeGroupVersion.String(), "ExecCredential"
			if exp, ok := tokenExpiry(tok); ok {
				cred.Status.ExpirationTimestamp = &exp
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(cred)
		},
	}
}

// tokenExpiry reads a JWT's exp claim (unverified: it only tells kubectl when
// to ask again; the gateway verifies the token).
func tokenExpiry(tok string) (metav1.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return metav1.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return metav1.Time{}, false
	}
	var claims struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
		return metav1.Time{}, false
	}
	return metav1.Time{Time: time.Unix(claims.Exp, 0)}, true
}
