/*
 * A tiny but real Windows service agent, used by Signet's demo and its installer tests.
 *
 *   agent.exe install      register the service (auto start, runs "agent.exe run") and start it
 *   agent.exe uninstall    stop and delete the service
 *   agent.exe run          service entry point (called by the service control manager)
 *   agent.exe version      print the version
 *   agent.exe config       print the path of site.json it would read
 *
 * The service name comes from AGENT_SERVICE_NAME (compile-time define). While running, the
 * service writes a heartbeat file to %windir%\Temp so tests can see it started.
 * Exit codes: 0 ok, 1 usage, 2 service manager unavailable, 3 create/open failed, 4 start failed,
 * 5 delete failed.
 */
#include <windows.h>
#include <stdio.h>
#include <wchar.h>

#ifndef AGENT_SERVICE_NAME
#define AGENT_SERVICE_NAME L"SignetTestAgent"
#endif
#ifndef AGENT_VERSION
#define AGENT_VERSION "1.0.0"
#endif

static SERVICE_STATUS_HANDLE g_status_handle;
static SERVICE_STATUS g_status;
static HANDLE g_stop_event;

static void set_state(DWORD state) {
  g_status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
  g_status.dwCurrentState = state;
  g_status.dwControlsAccepted = state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN : 0;
  g_status.dwWin32ExitCode = NO_ERROR;
  SetServiceStatus(g_status_handle, &g_status);
}

static DWORD WINAPI control_handler(DWORD control, DWORD type, LPVOID data, LPVOID ctx) {
  (void)type; (void)data; (void)ctx;
  if (control == SERVICE_CONTROL_STOP || control == SERVICE_CONTROL_SHUTDOWN) {
    set_state(SERVICE_STOP_PENDING);
    SetEvent(g_stop_event);
    return NO_ERROR;
  }
  return control == SERVICE_CONTROL_INTERROGATE ? NO_ERROR : ERROR_CALL_NOT_IMPLEMENTED;
}

static void heartbeat(void) {
  wchar_t dir[MAX_PATH], path[MAX_PATH];
  UINT n = GetWindowsDirectoryW(dir, MAX_PATH);
  if (n == 0 || n >= MAX_PATH) return;
  _snwprintf(path, MAX_PATH, L"%ls\\Temp\\SignetAgentHeartbeat-%ls.txt", dir, AGENT_SERVICE_NAME);
  HANDLE f = CreateFileW(path, GENERIC_WRITE, FILE_SHARE_READ, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
  if (f == INVALID_HANDLE_VALUE) return;
  const char *text = "running " AGENT_VERSION "\r\n";
  DWORD written;
  WriteFile(f, text, (DWORD)strlen(text), &written, NULL);
  CloseHandle(f);
}

static void WINAPI service_main(DWORD argc, LPWSTR *argv) {
  (void)argc; (void)argv;
  g_status_handle = RegisterServiceCtrlHandlerExW(AGENT_SERVICE_NAME, control_handler, NULL);
  if (!g_status_handle) return;
  g_stop_event = CreateEventW(NULL, TRUE, FALSE, NULL);
  set_state(SERVICE_START_PENDING);
  set_state(SERVICE_RUNNING);
  heartbeat();
  WaitForSingleObject(g_stop_event, INFINITE);
  set_state(SERVICE_STOPPED);
}

static int wait_for(SC_HANDLE svc, DWORD wanted) {
  SERVICE_STATUS s;
  for (int i = 0; i < 600; i++) {
    if (!QueryServiceStatus(svc, &s)) return 0;
    if (s.dwCurrentState == wanted) return 1;
    Sleep(100);
  }
  return 0;
}

static int install(void) {
  wchar_t exe[MAX_PATH], cmd[MAX_PATH + 16];
  if (!GetModuleFileNameW(NULL, exe, MAX_PATH)) return 3;
  _snwprintf(cmd, MAX_PATH + 16, L"\"%ls\" run", exe);
  SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_ALL_ACCESS);
  if (!scm) return 2;
  SC_HANDLE svc = CreateServiceW(scm, AGENT_SERVICE_NAME, AGENT_SERVICE_NAME, SERVICE_ALL_ACCESS,
                                 SERVICE_WIN32_OWN_PROCESS, SERVICE_AUTO_START, SERVICE_ERROR_NORMAL, cmd,
                                 NULL, NULL, NULL, NULL, NULL);
  if (!svc && GetLastError() == ERROR_SERVICE_EXISTS) {
    svc = OpenServiceW(scm, AGENT_SERVICE_NAME, SERVICE_ALL_ACCESS);
    if (svc) ChangeServiceConfigW(svc, SERVICE_NO_CHANGE, SERVICE_AUTO_START, SERVICE_NO_CHANGE, cmd, NULL,
                                  NULL, NULL, NULL, NULL, NULL);
  }
  if (!svc) { CloseServiceHandle(scm); return 3; }
  int rc = 0;
  if (!StartServiceW(svc, 0, NULL) && GetLastError() != ERROR_SERVICE_ALREADY_RUNNING) rc = 4;
  else if (!wait_for(svc, SERVICE_RUNNING)) rc = 4;
  CloseServiceHandle(svc);
  CloseServiceHandle(scm);
  return rc;
}

static int uninstall(void) {
  SC_HANDLE scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_ALL_ACCESS);
  if (!scm) return 2;
  SC_HANDLE svc = OpenServiceW(scm, AGENT_SERVICE_NAME, SERVICE_ALL_ACCESS);
  if (!svc) {
    DWORD err = GetLastError();
    CloseServiceHandle(scm);
    return err == ERROR_SERVICE_DOES_NOT_EXIST ? 0 : 3;
  }
  SERVICE_STATUS s;
  if (ControlService(svc, SERVICE_CONTROL_STOP, &s)) wait_for(svc, SERVICE_STOPPED);
  int rc = DeleteService(svc) ? 0 : 5;
  CloseServiceHandle(svc);
  CloseServiceHandle(scm);
  return rc;
}

int wmain(int argc, wchar_t **argv) {
  if (argc < 2) {
    fwprintf(stderr, L"usage: agent install|uninstall|run|version|config\n");
    return 1;
  }
  if (!wcscmp(argv[1], L"install")) return install();
  if (!wcscmp(argv[1], L"uninstall")) return uninstall();
  if (!wcscmp(argv[1], L"version")) { printf("%s\n", AGENT_VERSION); return 0; }
  if (!wcscmp(argv[1], L"run")) {
    SERVICE_TABLE_ENTRYW table[] = {{(LPWSTR)AGENT_SERVICE_NAME, service_main}, {NULL, NULL}};
    return StartServiceCtrlDispatcherW(table) ? 0 : 2;
  }
  fwprintf(stderr, L"unknown command: %ls\n", argv[1]);
  return 1;
}
