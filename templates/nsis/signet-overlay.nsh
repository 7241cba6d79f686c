; Signet: the site data of an incrementally built installer (see site-installer.nsi, "Incremental
; builds"). Signet copies this file next to the rendered script of a stub build; it needs the
; System plug-in, LogicLib, and CONFIG_DIR and SIGNET_OVERLAY_MAX defined.
;
; The installer reads its own file ($EXEPATH): the PE header gives the file offset of the
; certificate table (Optional Header DataDirectory[4]; 0 when unsigned: then the end of the file),
; and the record must end exactly there:
;   [site.json: S bytes][meta: 128 bytes][S u32][128 u32][1 u32][CRC-32 u32]["SIGNETSJ"]
; meta = site code (ASCII, NUL-padded to 80 bytes) + key fingerprint (ASCII, NUL-padded to 48).
; The CRC-32 (IEEE, as RtlComputeCrc32) covers everything from site.json to the format number.
; Bytes after the certificate table are never read. The record is part of the Authenticode-signed
; range; the CRC catches a truncated or garbled copy, the signature a changed one.

!ifndef SIGNET_OVERLAY_NSH
!define SIGNET_OVERLAY_NSH

Var SignetSiteBuf ; the record in memory (site.json at offset 0); 0 until read
Var SignetSiteLen ; S
Var SignetSiteCode
Var SignetFingerprint

; Reads a little-endian integer of SIGNET_N bytes (2 or 4) at BASE + OFFSET into OUT.
!macro SIGNET_PEEK OUT BASE OFFSET SIGNET_N
  IntPtrOp $R7 ${BASE} + ${OFFSET}
  System::Call '*$R7(&i${SIGNET_N} .s)'
  Pop ${OUT}
!macroend

; Output: $R8 = "" when the record was read and checked (SignetSite* set), else why it was not.
Function SignetReadOverlay
  Push $0 ; file handle
  Push $1 ; buffer
  Push $2
  Push $3
  Push $4
  Push $5
  Push $6
  Push $7
  Push $R7
  StrCpy $R8 ""
  StrCpy $SignetSiteBuf 0
  StrCpy $SignetSiteLen 0
  StrCpy $1 0

  StrCpy $2 "$EXEPATH"
  ; GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_DELETE, OPEN_EXISTING
  System::Call 'kernel32::CreateFileW(w r2, i 0x80000000, i 5, p 0, i 3, i 0, p 0) p .r0'
  ${If} $0 = -1
    StrCpy $R8 "cannot be read (the installer cannot open its own file)"
    Goto signet_read_done
  ${EndIf}
  System::Call 'kernel32::GetFileSizeEx(p r0, *l .r2) i .r3'
  ${If} $3 = 0
    StrCpy $R8 "cannot be read (no file size)"
    Goto signet_read_close
  ${EndIf}
  Int64Cmp $2 0x7FFFFFFF 0 0 signet_read_too_big
  Goto signet_read_size_ok
signet_read_too_big:
  StrCpy $R8 "cannot be read (the file is over 2 GB)"
  Goto signet_read_close
signet_read_size_ok:
  ; $2 = file size

  ; the PE header: e_lfanew -> "PE\0\0" -> optional header -> DataDirectory[4]
  System::Alloc 4096
  Pop $1
  ${If} $1 == 0
    StrCpy $R8 "cannot be read (out of memory)"
    Goto signet_read_close
  ${EndIf}
  System::Call 'kernel32::ReadFile(p r0, p r1, i 4096, *i .r4, p 0) i .r3'
  ${If} $3 = 0
    StrCpy $R8 "cannot be read (read error)"
    Goto signet_read_close
  ${EndIf}
  ; $4 = bytes of the header read
  !insertmacro SIGNET_PEEK $3 $1 0 2
  ${If} $3 <> 0x5A4D
    StrCpy $R8 "is missing (not a PE file)"
    Goto signet_read_close
  ${EndIf}
  !insertmacro SIGNET_PEEK $5 $1 0x3C 4 ; e_lfanew
  IntOp $3 $5 + 264 ; signature + file header + the largest optional header up to DataDirectory[4]
  ${If} $5 < 0x40
  ${OrIf} $5 > 3584
  ${OrIf} $3 > $4
    StrCpy $R8 "is missing (bad PE header)"
    Goto signet_read_close
  ${EndIf}
  !insertmacro SIGNET_PEEK $3 $1 $5 4
  ${If} $3 <> 0x4550 ; "PE\0\0"
    StrCpy $R8 "is missing (bad PE signature)"
    Goto signet_read_close
  ${EndIf}
  IntOp $3 $5 + 20
  !insertmacro SIGNET_PEEK $6 $1 $3 2 ; SizeOfOptionalHeader
  IntOp $5 $5 + 24 ; the optional header
  !insertmacro SIGNET_PEEK $3 $1 $5 2 ; its magic
  ${If} $3 = 0x20B ; PE32+
    StrCpy $3 108 ; NumberOfRvaAndSizes
    StrCpy $7 144 ; DataDirectory[4]
  ${ElseIf} $3 = 0x10B ; PE32
    StrCpy $3 92
    StrCpy $7 128
  ${Else}
    StrCpy $R8 "is missing (unknown optional header)"
    Goto signet_read_close
  ${EndIf}
  IntOp $4 $7 + 8
  ${If} $6 < $4
    StrCpy $R8 "is missing (short optional header)"
    Goto signet_read_close
  ${EndIf}
  IntOp $3 $5 + $3
  !insertmacro SIGNET_PEEK $4 $1 $3 4
  ${If} $4 < 5
    StrCpy $R8 "is missing (no security directory)"
    Goto signet_read_close
  ${EndIf}
  IntOp $7 $5 + $7
  !insertmacro SIGNET_PEEK $5 $1 $7 4 ; certificate table: file offset
  IntOp $7 $7 + 4
  !insertmacro SIGNET_PEEK $6 $1 $7 4 ; and size
  ${If} $5 = 0
    StrCpy $5 $2 ; unsigned: the record ends at the end of the file
  ${Else}
    IntOp $7 $5 + $6
    ${If} $5 < 0
    ${OrIf} $6 < 0
    ${OrIf} $7 < $5
    ${OrIf} $7 > $2
      StrCpy $R8 "is missing (bad certificate table)"
      Goto signet_read_close
    ${EndIf}
  ${EndIf}
  ; $5 = where the record must end

  ; the trailer: the last 24 bytes before the certificate table
  ${If} $5 < 24
    StrCpy $R8 "is missing"
    Goto signet_read_close
  ${EndIf}
  IntOp $3 $5 - 24
  System::Call 'kernel32::SetFilePointerEx(p r0, l r3, p 0, i 0) i .r4'
  System::Call 'kernel32::ReadFile(p r0, p r1, i 24, *i .r6, p 0) i .r4'
  ${If} $4 = 0
  ${OrIf} $6 <> 24
    StrCpy $R8 "cannot be read (read error)"
    Goto signet_read_close
  ${EndIf}
  !insertmacro SIGNET_PEEK $3 $1 16 4
  !insertmacro SIGNET_PEEK $4 $1 20 4
  ${If} $3 <> 0x4E474953 ; "SIGN"
  ${OrIf} $4 <> 0x4A535445 ; "ETSJ"
    StrCpy $R8 "is missing"
    Goto signet_read_close
  ${EndIf}
  !insertmacro SIGNET_PEEK $6 $1 0 4 ; S
  !insertmacro SIGNET_PEEK $3 $1 4 4 ; meta length
  !insertmacro SIGNET_PEEK $4 $1 8 4 ; format
  ${If} $3 <> 128
  ${OrIf} $4 <> 1
    StrCpy $R8 "is in an unknown format"
    Goto signet_read_close
  ${EndIf}
  IntOp $7 $6 + 152 ; the whole record
  ${If} $6 < 2
  ${OrIf} $6 > ${SIGNET_OVERLAY_MAX}
  ${OrIf} $7 > $5
    StrCpy $R8 "is damaged (bad length)"
    Goto signet_read_close
  ${EndIf}
  System::Free $1
  StrCpy $1 0

  ; the record, checked by its CRC-32
  System::Alloc $7
  Pop $1
  ${If} $1 == 0
    StrCpy $R8 "cannot be read (out of memory)"
    Goto signet_read_close
  ${EndIf}
  IntOp $3 $5 - $7
  System::Call 'kernel32::SetFilePointerEx(p r0, l r3, p 0, i 0) i .r4'
  System::Call 'kernel32::ReadFile(p r0, p r1, i r7, *i .r3, p 0) i .r4'
  ${If} $4 = 0
  ${OrIf} $3 <> $7
    StrCpy $R8 "cannot be read (read error)"
    Goto signet_read_close
  ${EndIf}
  IntOp $3 $6 + 140
  System::Call 'ntdll::RtlComputeCrc32(i 0, p r1, i r3) i .r4'
  !insertmacro SIGNET_PEEK $5 $1 $3 4
  IntOp $3 $6 + 128
  !insertmacro SIGNET_PEEK $R7 $1 $3 4
  ${If} $4 <> $5
  ${OrIf} $R7 <> $6 ; the length read first is the one the CRC covers
    StrCpy $R8 "is damaged (checksum mismatch)"
    Goto signet_read_close
  ${EndIf}
  IntPtrOp $3 $1 + $6
  System::Call '*$3(&m80 .r4, &m48 .r5)'
  ${If} $4 == ""
  ${OrIf} $5 == ""
    StrCpy $R8 "is damaged (no site code)"
    Goto signet_read_close
  ${EndIf}
  StrCpy $SignetSiteCode $4
  StrCpy $SignetFingerprint $5
  StrCpy $SignetSiteLen $6
  StrCpy $SignetSiteBuf $1
  StrCpy $1 0 ; kept until the installer ends

signet_read_close:
  System::Call 'kernel32::CloseHandle(p r0)'
  ${If} $1 != 0
    System::Free $1
  ${EndIf}
signet_read_done:
  Pop $R7
  Pop $7
  Pop $6
  Pop $5
  Pop $4
  Pop $3
  Pop $2
  Pop $1
  Pop $0
FunctionEnd

; Writes site.json (the record read by SignetReadOverlay) into ${CONFIG_DIR}, replacing any file
; there, as `File` does in a full build. Sets the error flag when it cannot.
Function SignetWriteSiteJson
  Push $0
  Push $1
  Push $2
  Push $3
  ${If} $SignetSiteBuf == 0
    SetErrors
    Goto signet_write_done
  ${EndIf}
  StrCpy $2 "${CONFIG_DIR}\site.json"
  ; GENERIC_WRITE, no sharing, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL
  System::Call 'kernel32::CreateFileW(w r2, i 0x40000000, i 0, p 0, i 2, i 0x80, p 0) p .r0'
  ${If} $0 = -1
    SetErrors
    Goto signet_write_done
  ${EndIf}
  System::Call 'kernel32::WriteFile(p r0, p $SignetSiteBuf, i $SignetSiteLen, *i .r1, p 0) i .r3'
  System::Call 'kernel32::CloseHandle(p r0) i .r2'
  ${If} $3 = 0
  ${OrIf} $1 <> $SignetSiteLen
  ${OrIf} $2 = 0
    SetErrors
  ${EndIf}
signet_write_done:
  Pop $3
  Pop $2
  Pop $1
  Pop $0
FunctionEnd

!endif
