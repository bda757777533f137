# bash completion for quiescectl (installed as
# share/bash-completion/completions/quiescectl).
# Commands come from `quiescectl --help`, so they never drift from it;
# database ids from `quiescectl --json list` when a host answers (at most
# 2 s); file names where a command takes a file.

_quiescectl_ids() {
  local socket=$1 out
  out=$(timeout 2 quiescectl ${socket:+--socket "$socket"} --json list \
        2>/dev/null) || return
  # {"databases":[{"db":1,...,"path":"/x/y.sqlite",...},...]}
  grep -oE '"db":[0-9]+' <<<"$out" | cut -d: -f2
}

_quiescectl() {
  local cur prev words cword
  _init_completion -n = || return

  # The command (first word that is not an option or an option's value),
  # and --socket's value, which the id lookup must use too.
  local i command="" socket="" ncommand=0
  for ((i = 1; i < cword; i++)); do
    case ${words[i]} in
      --socket) socket=${words[i + 1]}; ((i++)) ;;
      -o|--output|--count|--timeout|--lease-ms|--param|--attach|--origin|\
      --cache|--profile|--rename) ((i++)) ;;
      --) break ;;
      -*) ;;
      *) if [[ -z $command ]]; then command=${words[i]}; ncommand=$i; fi ;;
    esac
  done

  case $prev in
    --socket)
      _filedir sock
      [[ ${#COMPREPLY[@]} -eq 0 ]] && _filedir
      return ;;
    -o|--output|--attach|--param) _filedir; return ;;
    --count|--timeout|--lease-ms|--origin|--cache|--rename) return ;;
    --profile) _filedir -d; return ;;
  esac

  if [[ -z $command ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W '--socket --json --help --version' -- "$cur"))
    else
      local commands
      commands=$(quiescectl --help 2>/dev/null |
                 sed -n '/^commands:/,/^$/{s/^  \([a-z]*\).*/\1/p}')
      COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    fi
    return
  fi

  local nargs=$((cword - ncommand))  # 1: the first argument after COMMAND
  case $command in
    help)
      if ((nargs == 1)); then
        COMPREPLY=($(compgen -W "$(quiescectl --help 2>/dev/null |
          sed -n '/^commands:/,/^$/{s/^  \([a-z]*\).*/\1/p}')" -- "$cur"))
      fi ;;
    list) ;;
    status|watch|snapshot|hold|inject)
      if [[ $cur == -* ]]; then
        local opts
        case $command in
          watch) opts='--count --timeout' ;;
          snapshot) opts='-o --verify' ;;
          hold) opts='--lease-ms --' ;;
          inject) opts='--param --attach --params-from-attachment --dry-run
                        --readers-may-proceed' ;;
        esac
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
      elif ((nargs == 1)); then
        COMPREPLY=($(compgen -W "$(_quiescectl_ids "$socket")" -- "$cur"))
        _filedir  # a DB may be a path
      elif [[ $command == inject ]]; then
        _filedir sql
      else
        _filedir
      fi ;;
    bundle)
      if ((nargs == 1)); then
        COMPREPLY=($(compgen -W 'ls pack inject verify' -- "$cur"))
      elif [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W '--origin --profile --cache -o
          --keep-credentials --rename --overwrite --json' -- "$cur"))
      else
        _filedir
      fi ;;
  esac
}
complete -F _quiescectl quiescectl
