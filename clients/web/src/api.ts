// Clients of the console's Connect API, generated from protos/ (src/gen), with the CSRF
// token of the signed-in session added to every request.
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import {
  AuthService,
  HistoryService,
  LiveService,
  PhoneConnectorService,
  PlaybookAdminService,
} from "./gen/callcue/console/v1/console_service_pb";

let csrfToken = "";

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

export function getCsrfToken(): string {
  return csrfToken;
}

const withCsrf: Interceptor = (next) => async (request) => {
  if (csrfToken) request.header.set("x-csrf-token", csrfToken);
  return next(request);
};

const transport = createConnectTransport({
  baseUrl: window.location.origin,
  interceptors: [withCsrf],
});

export const auth = createClient(AuthService, transport);
export const live = createClient(LiveService, transport);
export const history = createClient(HistoryService, transport);
export const playbooks = createClient(PlaybookAdminService, transport);
export const phoneConnectors = createClient(PhoneConnectorService, transport);
