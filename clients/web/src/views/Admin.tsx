// Playbooks and keywords: list, search, create, edit, delete, import, export, try.
import { useCallback, useEffect, useState } from "react";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import { playbooks } from "../api";
import {
  KeywordConditionsSchema,
  KeywordSchema,
  PlaybookFormat,
  type Keyword,
  type Playbook,
} from "../gen/callcue/detector/v1/detector_service_pb";
import { SpeakerRole, TalkingPointCategory, TalkingPointSchema, type Detection } from "../gen/callcue/call/v1/call_pb";
import { seconds } from "../callState";
import { CATEGORIES, categoryLabel, speakerLabel } from "../labels";
import { download } from "../download";

function lines(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
}

interface Draft {
  keywordId: string;
  phrase: string;
  aliases: string;
  speaker: SpeakerRole;
  title: string;
  body: string;
  links: string;
  category: TalkingPointCategory;
  priority: number;
  inflections: boolean;
  fuzzy: number;
  phonetic: boolean;
  patterns: string;
  examples: string;
  semantic: number;
  cooldownSeconds: number;
  maxPerCall: number;
  exclude: string;
  activeFromSeconds: number;
  activeUntilSeconds: number;
}

const blank: Draft = {
  keywordId: "",
  phrase: "",
  aliases: "",
  speaker: SpeakerRole.UNSPECIFIED,
  title: "",
  body: "",
  links: "",
  category: TalkingPointCategory.OTHER,
  priority: 0,
  inflections: false,
  fuzzy: 0,
  phonetic: false,
  patterns: "",
  examples: "",
  semantic: 0,
  cooldownSeconds: 0,
  maxPerCall: 0,
  exclude: "",
  activeFromSeconds: 0,
  activeUntilSeconds: 0,
};

function draftOf(keyword: Keyword): Draft {
  const point = keyword.talkingPoint;
  const conditions = keyword.conditions;
  return {
    keywordId: keyword.keywordId,
    phrase: keyword.phrase,
    aliases: keyword.aliases.join("\n"),
    speaker: keyword.speaker,
    title: point?.title ?? "",
    body: point?.body ?? "",
    links: (point?.links ?? []).join("\n"),
    category: point?.category ?? TalkingPointCategory.OTHER,
    priority: point?.priority ?? 0,
    inflections: keyword.inflections,
    fuzzy: keyword.fuzzyThreshold,
    phonetic: keyword.phonetic,
    patterns: keyword.patterns.join("\n"),
    examples: keyword.examples.join("\n"),
    semantic: keyword.semanticThreshold,
    cooldownSeconds: seconds(conditions?.cooldown),
    maxPerCall: conditions?.maxPerCall ?? 0,
    exclude: (conditions?.excludePhrases ?? []).join("\n"),
    activeFromSeconds: seconds(conditions?.activeFrom),
    activeUntilSeconds: seconds(conditions?.activeUntil),
  };
}

function keywordOf(draft: Draft, playbookId: string): Keyword {
  return create(KeywordSchema, {
    keywordId: draft.keywordId,
    playbookId,
    phrase: draft.phrase.trim(),
    aliases: lines(draft.aliases),
    speaker: draft.speaker,
    inflections: draft.inflections,
    fuzzyThreshold: draft.fuzzy,
    phonetic: draft.phonetic,
    patterns: lines(draft.patterns),
    examples: lines(draft.examples),
    semanticThreshold: draft.semantic,
    talkingPoint: create(TalkingPointSchema, {
      title: draft.title,
      body: draft.body,
      links: lines(draft.links),
      category: draft.category,
      priority: draft.priority,
    }),
    conditions: create(KeywordConditionsSchema, {
      cooldown: draft.cooldownSeconds ? durationFromMs(draft.cooldownSeconds * 1000) : undefined,
      maxPerCall: draft.maxPerCall,
      excludePhrases: lines(draft.exclude),
      activeFrom: draft.activeFromSeconds ? durationFromMs(draft.activeFromSeconds * 1000) : undefined,
      activeUntil: draft.activeUntilSeconds ? durationFromMs(draft.activeUntilSeconds * 1000) : undefined,
    }),
  });
}

export function Admin() {
  const [books, setBooks] = useState<Playbook[]>([]);
  const [playbookId, setPlaybookId] = useState("default");
  const [keywords, setKeywords] = useState<Keyword[]>([]);
  const [search, setSearch] = useState("");
  const [draft, setDraft] = useState<Draft | null>(null);
  const [problem, setProblem] = useState("");
  const [notice, setNotice] = useState("");

  const fail = (caught: unknown) => setProblem(ConnectError.from(caught).rawMessage);

  const reload = useCallback(async () => {
    try {
      const listed = await playbooks.listPlaybooks({});
      setBooks(listed.playbooks);
      const found = await playbooks.listKeywords({ playbookId, text: search });
      setKeywords(found.keywords);
    } catch (caught) {
      fail(caught);
    }
  }, [playbookId, search]);

  useEffect(() => {
    void reload();
  }, [reload]);

  async function save() {
    if (!draft) return;
    setProblem("");
    try {
      const keyword = keywordOf(draft, playbookId);
      if (draft.keywordId) await playbooks.updateKeyword({ keyword });
      else await playbooks.createKeyword({ keyword });
      setNotice(`saved “${keyword.phrase || keyword.talkingPoint?.title}”; running calls use it now`);
      setDraft(null);
      await reload();
    } catch (caught) {
      fail(caught);
    }
  }

  async function remove(keyword: Keyword) {
    if (!window.confirm(`Delete “${keyword.displayName || keyword.phrase}”?`)) return;
    try {
      await playbooks.deleteKeyword({ keywordId: keyword.keywordId });
      await reload();
    } catch (caught) {
      fail(caught);
    }
  }

  return (
    <section className="admin">
      <div className="toolbar">
        <label>
          playbook
          <select value={playbookId} onChange={(e) => setPlaybookId(e.target.value)} data-testid="playbook-select">
            {!books.some((b) => b.playbookId === playbookId) && <option value={playbookId}>{playbookId}</option>}
            {books.map((book) => (
              <option key={book.playbookId} value={book.playbookId}>
                {book.displayName || book.playbookId} ({book.keywordCount})
              </option>
            ))}
          </select>
        </label>
        <input placeholder="search keywords" value={search} onChange={(e) => setSearch(e.target.value)} aria-label="search keywords" />
        <button onClick={() => setDraft({ ...blank })} data-testid="new-keyword">
          New keyword
        </button>
        <button
          onClick={async () => {
            try {
              const file = await playbooks.exportPlaybook({ playbookId, format: PlaybookFormat.YAML });
              download(file.content, file.contentType, file.filename);
            } catch (caught) {
              fail(caught);
            }
          }}
        >
          Export YAML
        </button>
      </div>
      {problem && (
        <p className="error" role="alert" data-testid="admin-error">
          {problem}
        </p>
      )}
      {notice && <p className="notice">{notice}</p>}
      {draft && <KeywordForm draft={draft} onChange={setDraft} onSave={save} onCancel={() => setDraft(null)} />}
      <table className="keywords">
        <thead>
          <tr>
            <th>phrase</th>
            <th>talking point</th>
            <th>category</th>
            <th>speaker</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {keywords.map((keyword) => (
            <tr key={keyword.keywordId} data-testid="keyword-row">
              <td>{[keyword.phrase, ...keyword.aliases].filter(Boolean).join(", ") || keyword.patterns.join(", ")}</td>
              <td>{keyword.talkingPoint?.title}</td>
              <td>{categoryLabel(keyword.talkingPoint?.category ?? 0)}</td>
              <td>{keyword.speaker ? speakerLabel(keyword.speaker) : "anyone"}</td>
              <td>
                <button onClick={() => setDraft(draftOf(keyword))}>Edit</button>
                <button onClick={() => void remove(keyword)}>Delete</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Import onDone={reload} />
      <TryIt playbookId={playbookId} />
    </section>
  );
}

function KeywordForm({
  draft,
  onChange,
  onSave,
  onCancel,
}: {
  draft: Draft;
  onChange: (draft: Draft) => void;
  onSave: () => void;
  onCancel: () => void;
}) {
  const set = <K extends keyof Draft>(key: K, value: Draft[K]) => onChange({ ...draft, [key]: value });
  return (
    <form
      className="keyword-form"
      data-testid="keyword-form"
      onSubmit={(e) => {
        e.preventDefault();
        onSave();
      }}
    >
      <label>
        phrase <input name="phrase" value={draft.phrase} onChange={(e) => set("phrase", e.target.value)} />
      </label>
      <label>
        aliases (one a line) <textarea name="aliases" value={draft.aliases} onChange={(e) => set("aliases", e.target.value)} />
      </label>
      <label>
        patterns, RE2 (one a line) <textarea name="patterns" value={draft.patterns} onChange={(e) => set("patterns", e.target.value)} />
      </label>
      <label>
        examples, by meaning (one a line) <textarea name="examples" value={draft.examples} onChange={(e) => set("examples", e.target.value)} />
      </label>
      <label>
        speaker
        <select value={draft.speaker} onChange={(e) => set("speaker", Number(e.target.value))}>
          <option value={SpeakerRole.UNSPECIFIED}>anyone</option>
          <option value={SpeakerRole.REP}>rep</option>
          <option value={SpeakerRole.PROSPECT}>prospect</option>
        </select>
      </label>
      <label>
        <input type="checkbox" checked={draft.inflections} onChange={(e) => set("inflections", e.target.checked)} /> other word forms
      </label>
      <label>
        <input type="checkbox" checked={draft.phonetic} onChange={(e) => set("phonetic", e.target.checked)} /> sounds alike
      </label>
      <label>
        fuzzy (0 off) <input type="number" step="0.01" min="0" max="1" value={draft.fuzzy} onChange={(e) => set("fuzzy", Number(e.target.value))} />
      </label>
      <label>
        meaning threshold (0: 0.6) <input type="number" step="0.01" min="0" max="1" value={draft.semantic} onChange={(e) => set("semantic", Number(e.target.value))} />
      </label>
      <label>
        title <input name="title" value={draft.title} onChange={(e) => set("title", e.target.value)} />
      </label>
      <label>
        body (Markdown) <textarea name="body" value={draft.body} onChange={(e) => set("body", e.target.value)} />
      </label>
      <label>
        links (one a line) <textarea name="links" value={draft.links} onChange={(e) => set("links", e.target.value)} />
      </label>
      <label>
        category
        <select value={draft.category} onChange={(e) => set("category", Number(e.target.value))}>
          {CATEGORIES.map((category) => (
            <option key={category} value={category}>
              {categoryLabel(category)}
            </option>
          ))}
        </select>
      </label>
      <label>
        priority <input type="number" value={draft.priority} onChange={(e) => set("priority", Number(e.target.value))} />
      </label>
      <label>
        cooldown (s) <input type="number" min="0" value={draft.cooldownSeconds} onChange={(e) => set("cooldownSeconds", Number(e.target.value))} />
      </label>
      <label>
        at most per call (0: no limit) <input type="number" min="0" value={draft.maxPerCall} onChange={(e) => set("maxPerCall", Number(e.target.value))} />
      </label>
      <label>
        not with (one a line) <textarea value={draft.exclude} onChange={(e) => set("exclude", e.target.value)} />
      </label>
      <label>
        only from (s into the call){" "}
        <input type="number" min="0" value={draft.activeFromSeconds} onChange={(e) => set("activeFromSeconds", Number(e.target.value))} />
      </label>
      <label>
        only until (s; 0: the end){" "}
        <input type="number" min="0" value={draft.activeUntilSeconds} onChange={(e) => set("activeUntilSeconds", Number(e.target.value))} />
      </label>
      <div>
        <button type="submit" data-testid="save-keyword">
          Save
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function Import({ onDone }: { onDone: () => Promise<void> }) {
  const [text, setText] = useState("");
  const [replace, setReplace] = useState(false);
  const [result, setResult] = useState("");
  const [problem, setProblem] = useState("");
  return (
    <div className="import">
      <h3>Import a playbook (YAML or JSON)</h3>
      <input
        type="file"
        accept=".yaml,.yml,.json"
        onChange={async (e) => {
          const file = e.target.files?.[0];
          if (file) setText(await file.text());
        }}
      />
      <textarea value={text} onChange={(e) => setText(e.target.value)} rows={8} aria-label="playbook document" />
      <label>
        <input type="checkbox" checked={replace} onChange={(e) => setReplace(e.target.checked)} /> replace if it exists
      </label>
      <button
        onClick={async () => {
          setProblem("");
          setResult("");
          try {
            const reply = await playbooks.importPlaybook({ content: new TextEncoder().encode(text), replace });
            setResult(`imported ${reply.playbook?.playbookId}: ${reply.keywordsCreated} keywords`);
            await onDone();
          } catch (caught) {
            setProblem(ConnectError.from(caught).rawMessage);
          }
        }}
      >
        Import
      </button>
      {result && <p className="notice">{result}</p>}
      {problem && (
        <pre className="error" role="alert" data-testid="import-error">
          {problem}
        </pre>
      )}
    </div>
  );
}

function TryIt({ playbookId }: { playbookId: string }) {
  const [text, setText] = useState("");
  const [speaker, setSpeaker] = useState(SpeakerRole.UNSPECIFIED);
  const [fired, setFired] = useState<Detection[] | null>(null);
  const [problem, setProblem] = useState("");
  return (
    <div className="try-it">
      <h3>Try it</h3>
      <input placeholder="a sentence someone might say" value={text} onChange={(e) => setText(e.target.value)} aria-label="try sentence" />
      <select value={speaker} onChange={(e) => setSpeaker(Number(e.target.value))}>
        <option value={SpeakerRole.UNSPECIFIED}>anyone</option>
        <option value={SpeakerRole.REP}>rep</option>
        <option value={SpeakerRole.PROSPECT}>prospect</option>
      </select>
      <button
        onClick={async () => {
          setProblem("");
          try {
            setFired((await playbooks.tryPlaybook({ playbookId, text, speaker })).detections);
          } catch (caught) {
            setProblem(ConnectError.from(caught).rawMessage);
          }
        }}
        data-testid="try-button"
      >
        Try
      </button>
      {problem && <p className="error">{problem}</p>}
      {fired && (
        <ul data-testid="try-results">
          {fired.length === 0 && <li>nothing would fire</li>}
          {fired.map((d) => (
            <li key={d.detectionId}>
              {d.talkingPoint?.title || d.phrase} (heard “{d.matchedText}”)
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
