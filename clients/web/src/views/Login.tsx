import { useState } from "react";
import { ConnectError } from "@connectrpc/connect";
import { auth, setCsrfToken } from "../api";
import type { User } from "../gen/callcue/console/v1/console_service_pb";

export function Login({ onSignedIn }: { onSignedIn: (user: User) => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [problem, setProblem] = useState("");
  const [busy, setBusy] = useState(false);
  return (
    <form
      className="login"
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setProblem("");
        try {
          const reply = await auth.login({ username, password });
          setCsrfToken(reply.csrfToken);
          if (reply.user) onSignedIn(reply.user);
        } catch (caught) {
          setProblem(ConnectError.from(caught).rawMessage);
        } finally {
          setBusy(false);
        }
      }}
    >
      <h1>callcue</h1>
      <label>
        username <input name="username" autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} />
      </label>
      <label>
        password
        <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
      </label>
      <button type="submit" disabled={busy}>
        Sign in
      </button>
      {problem && (
        <p className="error" role="alert" data-testid="login-error">
          {problem}
        </p>
      )}
    </form>
  );
}
