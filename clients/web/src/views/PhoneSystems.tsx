// Phone-system connectors: where a tenant's Twilio, Genesys and FreeSWITCH calls come in.
import { useCallback, useEffect, useState } from "react";
import { create } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { phoneConnectors, playbooks } from "../api";
import type { CreatePhoneConnectorResponse } from "../gen/callcue/console/v1/console_service_pb";
import type { Playbook } from "../gen/callcue/detector/v1/detector_service_pb";
import {
  ConnectorProtocol,
  ConnectorSchema,
  type Connector,
} from "../gen/callcue/telephony/v1/connector_service_pb";

// Which channel is the rep, per protocol; the first is the service's default.
const REP_CHANNELS: Record<number, string[]> = {
  [ConnectorProtocol.TWILIO]: ["outbound", "inbound"],
  [ConnectorProtocol.AUDIOHOOK]: ["internal", "external"],
  [ConnectorProtocol.FREESWITCH]: ["right", "left", "mixed"],
};

const PROTOCOLS: [ConnectorProtocol, string][] = [
  [ConnectorProtocol.TWILIO, "Twilio Media Streams"],
  [ConnectorProtocol.AUDIOHOOK, "Genesys Cloud AudioHook"],
  [ConnectorProtocol.FREESWITCH, "FreeSWITCH mod_audio_stream"],
];

function protocolName(protocol: ConnectorProtocol): string {
  return PROTOCOLS.find(([value]) => value === protocol)?.[1] ?? "unknown";
}

export function PhoneSystems() {
  const [connectors, setConnectors] = useState<Connector[]>([]);
  const [books, setBooks] = useState<Playbook[]>([]);
  const [protocol, setProtocol] = useState(ConnectorProtocol.TWILIO);
  const [name, setName] = useState("");
  const [repChannel, setRepChannel] = useState("");
  const [playbookId, setPlaybookId] = useState("");
  const [account, setAccount] = useState("");
  const [token, setToken] = useState("");
  const [created, setCreated] = useState<CreatePhoneConnectorResponse | null>(null);
  const [problem, setProblem] = useState("");

  const fail = (caught: unknown) => setProblem(ConnectError.from(caught).rawMessage);

  const reload = useCallback(async () => {
    try {
      setConnectors((await phoneConnectors.listPhoneConnectors({})).connectors);
      setBooks((await playbooks.listPlaybooks({})).playbooks);
    } catch (caught) {
      fail(caught);
    }
  }, []);

  useEffect(() => {
    void reload();
  }, [reload]);

  async function add() {
    setProblem("");
    try {
      const reply = await phoneConnectors.createPhoneConnector({
        connector: create(ConnectorSchema, {
          protocol,
          displayName: name.trim(),
          repChannel,
          playbookIds: playbookId ? [playbookId] : [],
          accountId: account.trim(),
        }),
        twilioAuthToken: protocol === ConnectorProtocol.TWILIO ? token : "",
      });
      setCreated(reply);
      setToken("");
      setName("");
      await reload();
    } catch (caught) {
      fail(caught);
    }
  }

  async function remove(connector: Connector) {
    if (!window.confirm(`Delete “${connector.displayName || connector.connectorId}”? Its calls are refused from then on.`)) return;
    try {
      await phoneConnectors.deletePhoneConnector({ connectorId: connector.connectorId });
      if (created?.connector?.connectorId === connector.connectorId) setCreated(null);
      await reload();
    } catch (caught) {
      fail(caught);
    }
  }

  return (
    <section className="phone-systems">
      <h2>Phone systems</h2>
      {problem && (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
      <table data-testid="connectors">
        <thead>
          <tr>
            <th>name</th>
            <th>protocol</th>
            <th>rep</th>
            <th>playbooks</th>
            <th>URL</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {connectors.map((connector) => (
            <tr key={connector.connectorId} data-testid="connector">
              <td>{connector.displayName || connector.connectorId}</td>
              <td>{protocolName(connector.protocol)}</td>
              <td>{connector.repChannel}</td>
              <td>{connector.playbookIds.join(", ") || "default"}</td>
              <td>
                <code>{connector.url || connector.path}</code>
              </td>
              <td>
                <button onClick={() => void remove(connector)}>Delete</button>
              </td>
            </tr>
          ))}
          {!connectors.length && (
            <tr>
              <td colSpan={6} className="muted">
                No phone system connected yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      {created?.connector && (
        <div className="notice" role="status" data-testid="new-credentials">
          <p>
            Connector <strong>{created.connector.displayName || created.connector.connectorId}</strong> is ready. Give
            the phone system this URL{created.apiKey ? " and these credentials; they are shown only now" : ""}:
          </p>
          <dl>
            <dt>URL</dt>
            <dd>
              <code data-testid="new-url">{created.connector.url || created.connector.path}</code>
            </dd>
            {created.apiKey && (
              <>
                <dt>{created.connector.protocol === ConnectorProtocol.AUDIOHOOK ? "API key (X-API-KEY)" : "Bearer key"}</dt>
                <dd>
                  <code data-testid="new-api-key">{created.apiKey}</code>
                </dd>
              </>
            )}
            {created.clientSecret && (
              <>
                <dt>Client secret</dt>
                <dd>
                  <code data-testid="new-client-secret">{created.clientSecret}</code>
                </dd>
              </>
            )}
          </dl>
          <button onClick={() => setCreated(null)}>Done</button>
        </div>
      )}
      <form
        className="new-connector"
        onSubmit={(e) => {
          e.preventDefault();
          void add();
        }}
      >
        <h3>Connect a phone system</h3>
        <label>
          protocol
          <select
            value={protocol}
            onChange={(e) => {
              setProtocol(Number(e.target.value) as ConnectorProtocol);
              setRepChannel("");
            }}
            data-testid="connector-protocol"
          >
            {PROTOCOLS.map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <label>
          name
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder="Support line" data-testid="connector-name" />
        </label>
        <label>
          the rep is on
          <select value={repChannel} onChange={(e) => setRepChannel(e.target.value)} data-testid="connector-rep">
            {REP_CHANNELS[protocol].map((channel, index) => (
              <option key={channel} value={index === 0 ? "" : channel}>
                {channel}
                {index === 0 ? " (default)" : ""}
              </option>
            ))}
          </select>
        </label>
        <label>
          playbook
          <select value={playbookId} onChange={(e) => setPlaybookId(e.target.value)} data-testid="connector-playbook">
            <option value="">default</option>
            {books.map((book) => (
              <option key={book.playbookId} value={book.playbookId}>
                {book.displayName || book.playbookId}
              </option>
            ))}
          </select>
        </label>
        <label>
          {protocol === ConnectorProtocol.AUDIOHOOK ? "Genesys organization id" : "Twilio AccountSid"} (optional)
          <input value={account} onChange={(e) => setAccount(e.target.value)} disabled={protocol === ConnectorProtocol.FREESWITCH} />
        </label>
        {protocol === ConnectorProtocol.TWILIO && (
          <label>
            Twilio auth token
            <input type="password" autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} data-testid="connector-token" />
          </label>
        )}
        <button type="submit" data-testid="add-connector">
          Add
        </button>
      </form>
    </section>
  );
}
