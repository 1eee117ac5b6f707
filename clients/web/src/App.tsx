import { useEffect, useState } from "react";
import { Code, ConnectError } from "@connectrpc/connect";
import { auth, setCsrfToken } from "./api";
import { Role, type User } from "./gen/callcue/console/v1/console_service_pb";
import { navigate, usePath } from "./router";
import { Admin } from "./views/Admin";
import { SessionDetail, SessionList } from "./views/History";
import { LiveCall } from "./views/LiveCall";
import { PhoneSystems } from "./views/PhoneSystems";
import { Login } from "./views/Login";
import { RepHome } from "./views/RepHome";
import { Wall } from "./views/Wall";

function Screen({ path, user }: { path: string; user: User }) {
  const call = path.match(/^\/call\/([^/]+)$/);
  if (call) return <LiveCall sessionId={decodeURIComponent(call[1])} />;
  const session = path.match(/^\/history\/([^/]+)$/);
  if (session) return <SessionDetail sessionId={decodeURIComponent(session[1])} />;
  if (path === "/history") return <SessionList />;
  if (path === "/wall") return <Wall />;
  if (path === "/admin" || path === "/phone") {
    // The API refuses a rep too; this only spares them a screen of errors.
    if (user.role !== Role.ADMIN) {
      return (
        <p className="error" role="alert">
          {path === "/admin" ? "Playbooks" : "Phone systems"} are for admins; {user.username} is not one.
        </p>
      );
    }
    return path === "/admin" ? <Admin /> : <PhoneSystems />;
  }
  return <RepHome />;
}

export function App() {
  const path = usePath();
  const [user, setUser] = useState<User | null | undefined>(undefined);
  const [problem, setProblem] = useState("");

  useEffect(() => {
    auth
      .getMe({})
      .then((me) => {
        setCsrfToken(me.csrfToken);
        setUser(me.user ?? null);
      })
      .catch((caught: unknown) => {
        const failure = ConnectError.from(caught);
        if (failure.code !== Code.Unauthenticated) setProblem(failure.rawMessage);
        setUser(null);
      });
  }, []);

  if (user === undefined) return <p className="muted">Loading…</p>;
  if (user === null) {
    return (
      <>
        {problem && <p className="error">{problem}</p>}
        <Login onSignedIn={setUser} />
      </>
    );
  }
  const supervisor = user.role === Role.SUPERVISOR || user.role === Role.ADMIN;
  const link = (to: string, label: string) => (
    <a
      href={to}
      className={path === to ? "active" : ""}
      onClick={(e) => {
        e.preventDefault();
        navigate(to);
      }}
    >
      {label}
    </a>
  );
  return (
    <>
      <nav>
        <strong>callcue</strong>
        {link("/", "Call")}
        {supervisor && link("/wall", "Live calls")}
        {link("/history", "History")}
        {user.role === Role.ADMIN && link("/admin", "Playbooks")}
        {user.role === Role.ADMIN && link("/phone", "Phone systems")}
        <span className="who" data-testid="who">
          {user.displayName || user.username} · {Role[user.role].toLowerCase()} · {user.tenantId}
        </span>
        <button
          onClick={async () => {
            await auth.logout({}).catch(() => undefined);
            setCsrfToken("");
            setUser(null);
            navigate("/");
          }}
        >
          Sign out
        </button>
      </nav>
      <main>
        <Screen path={path} user={user} />
      </main>
    </>
  );
}
