; Signet per-site installer (NSIS 3, 64-bit). Rendered by Signet.
;
; Only validated identifiers and version numbers are substituted into this file (see
; docs/installers.md for the variables). Every free-text label of the site travels inside
; payload\site.json, which Signet serialises and this script embeds as a file.
;
; Exit codes of a silent install (/S): 0 installed; 1 cancelled; 2 aborted; 3 not an administrator;
; 4 the agent's install command failed; 5 the configuration folder could not be locked down;
; 6 not 64-bit Windows; 7 a file could not be written; 8 the configuration folder (or its vendor
; folder) already exists as a link (reparse point: a junction or symbolic link could redirect the
; key) or is owned by an account other than Administrators, SYSTEM or the installing account (its
; owner could always reopen it and read the key); 9 (incremental builds only) the site data appended
; to this installer is missing or damaged (see "Incremental builds" below) — nothing was written.
;
; Incremental builds. This template declares overlay support (the SIGNET_OVERLAY marker below).
; Compiled with SIGNET_STUB defined (`makensis -DSIGNET_STUB=1`, which Signet does once per
; release), it embeds no site data: Signet appends each site's data to a copy of that stub before
; signing it, inside the Authenticode-signed range, and the installer reads it back from its own
; file: PE header -> DataDirectory[4] (the certificate table; the end of the file when unsigned) ->
; the record that ends exactly there:
;   [0-7 zero bytes][site.json: S bytes][meta: 128 bytes][S u32][128 u32][1 u32][CRC-32 u32]["SIGNETSJ"]
; meta = the site code (NUL-padded to 80 bytes) and the key fingerprint (NUL-padded to 48 bytes);
; the CRC-32 (IEEE) covers site.json, meta and the three u32 before it. Nothing after the
; certificate table is ever read. Without SIGNET_STUB the template embeds payload\site.json as a
; file (the full build). NSIS's own CRC check covers only its data block, so it stays on.

Unicode true
Target amd64-unicode
RequestExecutionLevel admin
ManifestSupportedOS all
CRCCheck on
{{COMPRESSION}}

; This template can be built once per release and completed per site (see the header).
!define SIGNET_OVERLAY 1
; The largest site.json the installer accepts from its overlay (bytes).
!define SIGNET_OVERLAY_MAX 134217728

!define VENDOR "{{VENDOR}}"
!define PRODUCT "{{PRODUCT}}"
!define SERVICE_NAME "{{SERVICE_NAME}}"
!define AGENT_FILE "{{AGENT_FILE}}"
!define VERSION "{{VERSION}}"
!ifndef SIGNET_STUB
!define SITE_CODE "{{SITE_CODE}}"
!define KEY_FINGERPRINT "v{{KEY_VERSION}} ({{FINGERPRINT_HEX}})"
!endif
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
!ifdef SIGNET_STUB
VIAddVersionKey /LANG=0 "FileDescription" "${PRODUCT} installer"
!else
VIAddVersionKey /LANG=0 "FileDescription" "${PRODUCT} installer for site ${SITE_CODE}"
!endif
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
!ifdef SIGNET_STUB
  ; The site's data, before anything is changed: a missing or damaged record writes nothing.
  Call SignetReadOverlay
  ${If} $R8 != ""
    SetErrorLevel 9
    Abort "This installer's site configuration $R8."
  ${EndIf}
!endif
FunctionEnd

!ifdef SIGNET_STUB
!include "signet-overlay.nsh"
!endif

; Refuses a folder that would expose the enrollment key. Input: the path on the stack. Output:
; $R8 = "" when the folder does not exist or is acceptable, else why it is refused.
Function SignetCheckFolder
  Exch $R9
  Push $0
  Push $1
  Push $2
  Push $3
  Push $4
  Push $5
  StrCpy $R8 ""
  System::Call 'kernel32::GetFileAttributesW(w R9) i .r0'
  ${If} $0 = -1
    Goto signet_check_done ; absent: the installer creates it
  ${EndIf}
  IntOp $1 $0 & 0x400 ; FILE_ATTRIBUTE_REPARSE_POINT
  ${If} $1 <> 0
    StrCpy $R8 "is a link (reparse point)"
    Goto signet_check_done
  ${EndIf}
  IntOp $1 $0 & 0x10 ; FILE_ATTRIBUTE_DIRECTORY
  ${If} $1 = 0
    StrCpy $R8 "is not a folder"
    Goto signet_check_done
  ${EndIf}
  ; owner: SE_FILE_OBJECT (1), OWNER_SECURITY_INFORMATION (1)
  System::Call 'advapi32::GetNamedSecurityInfoW(w R9, i 1, i 1, *p .r1, p 0, p 0, p 0, *p .r2) i .r0'
  ${If} $0 <> 0
    StrCpy $R8 "has an owner that cannot be read (error $0)"
    Goto signet_check_done
  ${EndIf}
  System::Call 'advapi32::IsWellKnownSid(p r1, i 26) i .r3' ; WinBuiltinAdministratorsSid
  System::Call 'advapi32::IsWellKnownSid(p r1, i 22) i .r4' ; WinLocalSystemSid
  ${If} $3 = 0
  ${AndIf} $4 = 0
    ; the installing account itself (an administrator: checked in .onInit)
    StrCpy $5 0
    System::Call 'advapi32::OpenProcessToken(p -1, i 8, *p .r3) i .r0' ; TOKEN_QUERY
    ${If} $0 <> 0
      System::Alloc 1024
      Pop $4
      System::Call 'advapi32::GetTokenInformation(p r3, i 1, p r4, i 1024, *i .r0) i .r0' ; TokenUser
      ${If} $0 <> 0
        System::Call '*$4(p .r0)' ; TOKEN_USER.User.Sid
        System::Call 'advapi32::EqualSid(p r0, p r1) i .r5'
      ${EndIf}
      System::Free $4
      System::Call 'kernel32::CloseHandle(p r3)'
    ${EndIf}
    ${If} $5 = 0
      StrCpy $R8 "is owned by another account"
    ${EndIf}
  ${EndIf}
  System::Call 'kernel32::LocalFree(p r2)'
signet_check_done:
  Pop $5
  Pop $4
  Pop $3
  Pop $2
  Pop $1
  Pop $0
  Pop $R9
FunctionEnd

!macro SIGNET_REFUSE_FOLDER SIGNET_PATH
  Push "${SIGNET_PATH}"
  Call SignetCheckFolder
  ${If} $R8 != ""
    SetErrorLevel 8
    Abort "Refusing ${SIGNET_PATH}: it $R8. Remove it (as an administrator) and install again."
  ${EndIf}
!macroend

Section "Install"
  ; Before anything is changed: no linked or foreign-owned ProgramData folder (see below).
  !insertmacro SIGNET_REFUSE_FOLDER "$APPDATA\${VENDOR}"
  !insertmacro SIGNET_REFUSE_FOLDER "${CONFIG_DIR}"

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

  ; The site configuration holds the enrollment key. A standard user can create folders in
  ; ProgramData: a vendor or configuration folder made in advance by someone else (its owner can
  ; always change its ACL) or a link there (the write would follow it) is refused, before and after
  ; creating it (checked at the start, and again now that it exists, in case it was made in the
  ; meantime). Then the folder is owned by Administrators and limited to SYSTEM and
  ; Administrators (protected, no inherited entries) before the file is written into it.
  CreateDirectory "${CONFIG_DIR}"
  !insertmacro SIGNET_REFUSE_FOLDER "$APPDATA\${VENDOR}"
  !insertmacro SIGNET_REFUSE_FOLDER "${CONFIG_DIR}"
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "${CONFIG_DIR}" /setowner *S-1-5-32-544'
  Pop $0
  ${If} $0 != 0
    SetErrorLevel 5
    Abort "Cannot make Administrators the owner of ${CONFIG_DIR}"
  ${EndIf}
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "${CONFIG_DIR}" /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F'
  Pop $0
  ${If} $0 != 0
    SetErrorLevel 5
    Abort "Cannot restrict access to ${CONFIG_DIR}"
  ${EndIf}
  ClearErrors
  SetOutPath "${CONFIG_DIR}"
!ifdef SIGNET_STUB
  Call SignetWriteSiteJson
!else
  File "/oname=site.json" "payload\site.json"
!endif
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
!ifdef SIGNET_STUB
  WriteRegStr HKLM "${UNINST_KEY}" "SiteCode" "$SignetSiteCode"
  WriteRegStr HKLM "${UNINST_KEY}" "EnrollmentKeyFingerprint" "$SignetFingerprint"
!else
  WriteRegStr HKLM "${UNINST_KEY}" "SiteCode" "${SITE_CODE}"
  WriteRegStr HKLM "${UNINST_KEY}" "EnrollmentKeyFingerprint" "${KEY_FINGERPRINT}"
!endif
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
