/* Screen pop: the operator's workspace (mode "workspace") and the supervisors' live board ("board"), each
 * fed by the tab's one live connection. Texts come translated from the template (json_script
 * "live-config"); nothing here is user-facing English.
 */
import { boardView } from "./board.js";
import { config } from "./common.js";
import { startConnection } from "./connection.js";
import { workspaceView } from "./workspace.js";

if (config) {
  startConnection(config.mode === "board" ? boardView() : workspaceView());
}
