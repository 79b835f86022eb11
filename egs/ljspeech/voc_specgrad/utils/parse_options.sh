#!/usr/bin/env bash
# Kaldi-style option parsing, sourced by a script after its defaults:
#   --foo-bar VALUE or --foo_bar VALUE sets the existing variable foo_bar;
#   an option naming no variable is an error; a variable whose default is
#   true/false takes only true/false; --config FILE sources FILE (so scripts
#   name their own config variables otherwise, e.g. conf); --help prints
#   ${help_message} and the current values, then exits.
# Positional arguments after the options are left in "$@".

while true; do
    [ $# -eq 0 ] && break
    case "$1" in
    --help|-h)
        echo -e "${help_message:-No help found.}" 1>&2
        exit 0 ;;
    --config)
        [ $# -lt 2 ] && { echo "$0: --config needs a file" 1>&2; exit 1; }
        [ -f "$2" ] || { echo "$0: --config $2: no such file" 1>&2; exit 1; }
        # shellcheck disable=SC1090
        . "$2"
        shift 2 ;;
    --*=*)
        echo "$0: write '${1%%=*} ${1#*=}' (space, not '=')" 1>&2
        exit 1 ;;
    --*)
        name=$(echo "${1#--}" | sed 's/-/_/g')
        if [ -z "${!name+set}" ]; then
            echo "$0: invalid option $1 (no variable ${name}); see --help" 1>&2
            exit 1
        fi
        [ $# -lt 2 ] && { echo "$0: option $1 needs a value" 1>&2; exit 1; }
        old="${!name}"
        if [ "${old}" = true ] || [ "${old}" = false ]; then
            if [ "$2" != true ] && [ "$2" != false ]; then
                echo "$0: option $1 takes true or false, got '$2'" 1>&2
                exit 1
            fi
        fi
        printf -v "${name}" '%s' "$2"
        shift 2 ;;
    *)
        break ;;
    esac
done
true
