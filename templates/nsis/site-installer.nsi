; Signet per-site installer (NSIS 3, 64-bit). Rendered by Signet.
;
; Only validated identifiers and version numbers are substituted into this file (see
; docs/installers.md for the variables). Every free-text label of the site travels inside
; payload\site.json, which Signet serialises and this script embeds as a file.
;
; Exit codes of a silent install (/S): 0 installed; 1 cancelled; 2 aborted; 3 not an administrator;
; 4 the agent's install command failed; 5 the configuration folder could not be locked down;
; 6 not 64-bit Windows; 7 a file could not be written.

Unicode true
Target amd64-unicode
RequestExecutionLevel admin
ManifestSupportedOS all
{{COMPRESSION}}

!define VENDOR "{{VENDOR}}"
!define PRODUCT "{{PRODUCT}}"
!define SERVICE_NAME "{{SERVICE_NAME}}"
!define AGENT_FILE "{{AGENT_FILE}}"
!define VERSION "{{VERSION}}"
!define SITE_CODE "{{SITE_CODE}}"
!define KEY_FINGERPRINT "v{{KEY_VERSION}} ({{FINGERPRINT_HEX}})"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${VENDOR} ${PRODUCT}"
!define CONFIG_DIR "$APPDATA\${VENDOR}\${PRODUCT}"

; The uninstaller is signed when it is generated, by the same signer as the installer; a failing
; sign command fails the build (= 0).
!uninstfinalize '"./{{SIGN_SCRIPT}}" "%1"' = 0

!include LogicLib.nsh
!include x64.nsh

Name "${PRODUCT}"
OutFile "{{OUT_FILE}}"
InstallDir "$PROGRAMFILES64\${VENDOR}\${PRODUCT}"
ShowInstDetails show
ShowUninstDetails show
{{ICON}}

VIProductVersion "{{VERSION4}}"
VIFileVersion "{{VERSION4}}"
VIAddVersionKey /LANG=0 "ProductName" "${PRODUCT}"
VIAddVersionKey /LANG=0 "CompanyName" "${VENDOR}"
VIAddVersionKey /LANG=0 "FileDescription" "${PRODUCT} installer for site ${SITE_CODE}"
VIAddVersionKey /LANG=0 "FileVersion" "${VERSION}"
VIAddVersionKey /LANG=0 "ProductVersion" "${VERSION}"
VIAddVersionKey /LANG=0 "LegalCopyright" "${VENDOR}"

Page directory
Page instfiles
UninstPage uninstConfirm
UninstPage instfiles

Function .onInit
  ${IfNot} ${RunningX64}
    SetErrorLevel 6
    Abort
  ${EndIf}
  SetRegView 64
  SetShellVarContext all
  UserInfo::GetAccountType
  Pop $0
  ${If} $0 != "Admin"
    SetErrorLevel 3
    Abort
  ${EndIf}
FunctionEnd

Section "Install"
  ; Reinstall / upgrade: stop and remove the service of the installed agent before replacing it.
  ReadRegStr $R0 HKLM "${UNINST_KEY}" "InstallLocation"
  ${If} $R0 != ""
  ${AndIf} ${FileExists} "$R0\${AGENT_FILE}"
    DetailPrint "Replacing the installed ${PRODUCT}"
    ExecWait '"$R0\${AGENT_FILE}" {{UNINSTALL_ARGS}}' $R1
  ${EndIf}

  ClearErrors
  SetOverwrite on
  SetOutPath "$INSTDIR"
  File "/oname=${AGENT_FILE}" "payload\agent.exe"
  WriteUninstaller "$INSTDIR\uninst.exe"
  ${If} ${Errors}
    SetErrorLevel 7
    Abort "Cannot write to $INSTDIR"
  ${EndIf}

  ; The site configuration holds the enrollment key: its folder is limited to SYSTEM and
  ; Administrators (protected, no inherited entries) before the file is written into it.
  CreateDirectory "${CONFIG_DIR}"
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "${CONFIG_DIR}" /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F'
  Pop $0
  ${If} $0 != 0
    SetErrorLevel 5
    Abort "Cannot restrict access to ${CONFIG_DIR}"
  ${EndIf}
  ClearErrors
  SetOutPath "${CONFIG_DIR}"
  File "/oname=site.json" "payload\site.json"
  ${If} ${Errors}
    SetErrorLevel 7
    Abort "Cannot write ${CONFIG_DIR}\site.json"
  ${EndIf}
  ; An existing site.json keeps its own ACL when overwritten: reset it to the folder's.
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "${CONFIG_DIR}\site.json" /reset'
  Pop $0
  ${If} $0 != 0
    SetErrorLevel 5
    Abort "Cannot restrict access to ${CONFIG_DIR}\site.json"
  ${EndIf}
  SetOutPath "$INSTDIR"

  WriteRegStr HKLM "${UNINST_KEY}" "DisplayName" "${PRODUCT}"
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINST_KEY}" "Publisher" "${VENDOR}"
  WriteRegStr HKLM "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINST_KEY}" "UninstallString" '"$INSTDIR\uninst.exe"'
  WriteRegStr HKLM "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\uninst.exe" /S'
  WriteRegStr HKLM "${UNINST_KEY}" "SiteCode" "${SITE_CODE}"
  WriteRegStr HKLM "${UNINST_KEY}" "EnrollmentKeyFingerprint" "${KEY_FINGERPRINT}"
  WriteRegDWORD HKLM "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINST_KEY}" "NoRepair" 1

  ; Install and start the service through the agent's own install command.
  ClearErrors
  ExecWait '"$INSTDIR\${AGENT_FILE}" {{INSTALL_ARGS}}' $0
  ${If} ${Errors}
  ${OrIf} $0 != 0
    DetailPrint "The agent install command failed ($0)"
    SetErrorLevel 4
    Abort "The ${SERVICE_NAME} service could not be installed"
  ${EndIf}
SectionEnd

Function un.onInit
  SetRegView 64
  SetShellVarContext all
FunctionEnd

Section "Uninstall"
  ExecWait '"$INSTDIR\${AGENT_FILE}" {{UNINSTALL_ARGS}}' $0
  Delete "$INSTDIR\${AGENT_FILE}"
  Delete "$INSTDIR\uninst.exe"
  RMDir "$INSTDIR"
  RMDir "$PROGRAMFILES64\${VENDOR}"
!if {{REMOVE_CONFIG}} == 1
  Delete "${CONFIG_DIR}\site.json"
  RMDir "${CONFIG_DIR}"
  RMDir "$APPDATA\${VENDOR}"
!endif
  DeleteRegKey HKLM "${UNINST_KEY}"
SectionEnd
