;; what a deprivileged kernel traps on, as calls into the VMM (--virt bt): csrs sstatus, csrr sepc, sfence.vma, sret; and ecall
;; 000: 100322f3  csrrs t0, sstatus, t1
;; 004: 14102573  csrr a0, sepc
;; 008: 12000073  sfence.vma
;; 00c: 10200073  sret
;; 010: 00000073  ecall
(module
  (type (;0;) (func (param i32 i64 i32 i64 i32 i32 i64 i64 i32) (result i64)))
  (type (;1;) (func (param i64 i64) (result i64)))
  (type (;2;) (func (param i64 i32) (result i64)))
  (type (;3;) (func (param i64 i64 i32) (result i32)))
  (type (;4;) (func (param i32) (result i32)))
  (type (;5;) (func (param i64 i64 i64) (result i64)))
  (type (;6;) (func (param i32 i64) (result i32)))
  (type (;7;) (func (param i64 i64 i32 i32 i64) (result i32)))
  (import "env" "memory" (memory (;0;) 1 65536 shared))
  (import "hart" "load" (func (;0;) (type 2)))
  (import "hart" "store" (func (;1;) (type 3)))
  (import "hart" "fp" (func (;2;) (type 4)))
  (import "hart" "addD" (func (;3;) (type 1)))
  (import "hart" "mulD" (func (;4;) (type 1)))
  (import "hart" "fmaD" (func (;5;) (type 5)))
  (import "hart" "sys" (func (;6;) (type 6)))
  (func (;7;) (type 1) (param i64 i64) (result i64)
    (local i64 i64 i64)
    local.get 0
    i64.const 4294967295
    i64.and
    local.get 1
    i64.const 4294967295
    i64.and
    i64.mul
    local.set 2
    local.get 0
    i64.const 4294967295
    i64.and
    local.get 1
    i64.const 32
    i64.shr_u
    i64.mul
    local.set 3
    local.get 0
    i64.const 32
    i64.shr_u
    local.get 1
    i64.const 4294967295
    i64.and
    i64.mul
    local.set 4
    local.get 0
    i64.const 32
    i64.shr_u
    local.get 1
    i64.const 32
    i64.shr_u
    i64.mul
    local.get 3
    i64.const 32
    i64.shr_u
    i64.add
    local.get 4
    i64.const 32
    i64.shr_u
    i64.add
    local.get 2
    i64.const 32
    i64.shr_u
    local.get 3
    i64.const 4294967295
    i64.and
    i64.add
    local.get 4
    i64.const 4294967295
    i64.and
    i64.add
    i64.const 32
    i64.shr_u
    i64.add)
  (func (;8;) (type 7) (param i64 i64 i32 i32 i64) (result i32)
    (local i32 i32)
    block  ;; label = @1
      local.get 0
      i64.const 4095
      i64.and
      i64.const 4094
      i64.ge_u
      br_if 0 (;@1;)
      local.get 0
      local.get 1
      i64.sub
      i64.const 4096
      i64.lt_u
      if (result i32)  ;; label = @2
        local.get 0
        local.get 1
        i64.sub
        i32.wrap_i64
        local.get 2
        i32.add
      else
        local.get 3
        local.get 0
        i64.const 12
        i64.shr_u
        i32.wrap_i64
        i32.const 4095
        i32.and
        i32.const 4
        i32.shl
        i32.add
        local.tee 6
        i64.load align=1
        local.get 0
        i64.const -4096
        i64.and
        local.get 4
        i64.or
        i64.ne
        br_if 1 (;@1;)
        local.get 0
        local.get 6
        i64.load offset=8 align=1
        i64.add
        i32.wrap_i64
      end
      local.tee 5
      i32.const 1
      i32.shr_u
      local.get 5
      i32.const 19
      i32.shr_u
      i32.xor
      i32.const 262143
      i32.and
      i32.const 4
      i32.shl
      i32.const 4194304
      i32.add
      local.tee 6
      i32.load align=1
      local.get 5
      i32.ne
      br_if 0 (;@1;)
      local.get 6
      i32.load offset=4 align=1
      i32.const 3
      i32.eq
      br_if 0 (;@1;)
      local.get 6
      return
    end
    i32.const 0)
  (func (;9;) (type 0) (param i32 i64 i32 i64 i32 i32 i64 i64 i32) (result i64)
    (local i64 i64 i64 i32 i32 i32 i64 i64 i64)
    local.get 0
    i64.load offset=40 align=1
    local.set 15
    local.get 0
    i64.load offset=48 align=1
    local.set 16
    local.get 0
    i64.load offset=80 align=1
    local.set 17
    block  ;; label = @1
      loop  ;; label = @2
        block  ;; label = @3
          block  ;; label = @4
            block  ;; label = @5
              block  ;; label = @6
                local.get 2
                br_table 0 (;@6;) 1 (;@5;) 2 (;@4;) 3 (;@3;) 0 (;@6;)
              end
              local.get 0
              local.get 16
              i64.store offset=48 align=1
              local.get 0
              local.get 15
              i64.store offset=40 align=1
              i32.const 268641011
              local.get 1
              call 6
              local.set 12
              local.get 0
              i64.load offset=40 align=1
              local.set 15
              local.get 12
              i32.const 1
              i32.eq
              if  ;; label = @6
                local.get 1
                local.set 9
                br 5 (;@1;)
              end
              local.get 7
              local.get 12
              i32.const 2
              i32.le_u
              i64.extend_i32_u
              i64.add
              local.set 7
              local.get 12
              if  ;; label = @6
                local.get 0
                i64.load offset=512 align=1
                local.set 9
                br 5 (;@1;)
              end
            end
            local.get 0
            local.get 17
            i64.store offset=80 align=1
            i32.const 336602483
            local.get 1
            i64.const 4
            i64.add
            call 6
            local.set 12
            local.get 0
            i64.load offset=80 align=1
            local.set 17
            local.get 12
            i32.const 1
            i32.eq
            if  ;; label = @5
              local.get 1
              i64.const 4
              i64.add
              local.set 9
              br 4 (;@1;)
            end
            local.get 7
            local.get 12
            i32.const 2
            i32.le_u
            i64.extend_i32_u
            i64.add
            local.set 7
            local.get 12
            if  ;; label = @5
              local.get 0
              i64.load offset=512 align=1
              local.set 9
              br 4 (;@1;)
            end
          end
          i32.const 301990003
          local.get 1
          i64.const 8
          i64.add
          call 6
          local.set 12
          local.get 12
          i32.const 1
          i32.eq
          if  ;; label = @4
            local.get 1
            i64.const 8
            i64.add
            local.set 9
            br 3 (;@1;)
          end
          local.get 7
          local.get 12
          i32.const 2
          i32.le_u
          i64.extend_i32_u
          i64.add
          local.set 7
          local.get 12
          if  ;; label = @4
            local.get 0
            i64.load offset=512 align=1
            local.set 9
            br 3 (;@1;)
          end
        end
        i32.const 270532723
        local.get 1
        i64.const 12
        i64.add
        call 6
        local.set 12
        local.get 12
        i32.const 1
        i32.eq
        if  ;; label = @3
          local.get 1
          i64.const 12
          i64.add
          local.set 9
          br 2 (;@1;)
        end
        local.get 7
        local.get 12
        i32.const 2
        i32.le_u
        i64.extend_i32_u
        i64.add
        local.set 7
        local.get 0
        i64.load offset=512 align=1
        local.set 9
        br 1 (;@1;)
      end
    end
    local.get 0
    local.get 15
    i64.store offset=40 align=1
    local.get 0
    local.get 17
    i64.store offset=80 align=1
    local.get 0
    local.get 9
    i64.store offset=512 align=1
    local.get 7)
  (export "f0" (func 9)))
